//! The sending side of one track.

use crate::error::{Error, FrameError};
use crate::framing::Codec;
use crate::protect;
use crate::secret::BaseKey;
use crate::sframe::SframeKey;
use crate::suite::CipherSuite;

/// Encrypts the frames of one sending track. Each secret epoch gets a fresh, uniformly random
/// 64-bit KID and a counter from 0, so nonces are unique without any coordination: two senders
/// share a key only if they draw the same KID (probability ~n²/2^65).
pub struct FrameEncryptor {
    suite: CipherSuite,
    base_key: BaseKey,
    kid: u64,
    key: SframeKey,
    next_ctr: u64,
    ctr_limit: u64,
}

fn random_kid() -> Result<u64, Error> {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).map_err(|_| Error::EncryptionInternalError(FrameError::Randomness))?;
    Ok(u64::from_be_bytes(b))
}

impl FrameEncryptor {
    /// A track sending under `base_key` with a random KID.
    pub fn new(suite: CipherSuite, base_key: &BaseKey) -> Result<Self, Error> {
        Self::with_kid(suite, base_key, random_kid()?)
    }

    /// As [`new`](Self::new) with a chosen KID. Only for test vectors: a KID must be random.
    pub fn with_kid(suite: CipherSuite, base_key: &BaseKey, kid: u64) -> Result<Self, Error> {
        let key = SframeKey::derive(suite, base_key.as_bytes(), kid).map_err(Error::EncryptionInternalError)?;
        Ok(Self { suite, base_key: base_key.clone(), kid, key, next_ctr: 0, ctr_limit: u64::MAX })
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    /// The KID of the current epoch.
    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// The counter the next frame will carry.
    pub fn next_counter(&self) -> u64 {
        self.next_ctr
    }

    /// Switches to a new secret at once: new random KID, counter back to 0. The caller should
    /// then make the encoder produce a key frame, so receivers recover without waiting.
    pub fn set_base_key(&mut self, base_key: &BaseKey) -> Result<(), Error> {
        self.base_key = base_key.clone();
        self.new_epoch()
    }

    fn new_epoch(&mut self) -> Result<(), Error> {
        let mut kid = random_kid()?;
        while kid == self.kid {
            kid = random_kid()?;
        }
        self.key =
            SframeKey::derive(self.suite, self.base_key.as_bytes(), kid).map_err(Error::EncryptionInternalError)?;
        self.kid = kid;
        self.next_ctr = 0;
        Ok(())
    }

    /// Lowers the counter limit to exercise KID rollover in tests.
    #[doc(hidden)]
    pub fn set_counter_limit(&mut self, limit: u64) {
        self.ctr_limit = limit;
    }

    /// Protects one encoded frame. An empty frame carries nothing and is returned empty.
    pub fn encrypt(&mut self, codec: Codec, frame: &[u8]) -> Result<Vec<u8>, Error> {
        if frame.is_empty() {
            return Ok(Vec::new());
        }
        if self.next_ctr >= self.ctr_limit {
            // The counter never wraps: a new KID starts a new nonce space.
            self.new_epoch()?;
        }
        let ctr = self.next_ctr;
        // Spent even if sealing fails: a counter is never offered twice.
        self.next_ctr += 1;
        protect::seal(codec, &self.key, self.kid, ctr, frame).map_err(Error::EncryptionInternalError)
    }
}
