//! End-to-end encrypted signals (`docs/e2ee-protocol.md` §12).
//!
//! A signal's `type` and `data` are sealed with an SFrame key (suite 6) derived from the
//! session's base key under a label of its own, so a signal key is never a media key. Each
//! sender draws a random KID per secret and connection, counts its signals, and authenticates
//! the session id and its own connection id with them: a signal cannot be replayed (per-sender
//! window), moved to another session or passed off as another participant's.

use std::collections::HashMap;
use std::time::Instant;

use aws_lc_rs::hkdf;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::error::FrameError;
use crate::header::{Header, MAX_HEADER_LEN};
use crate::keyring::KeyRing;
use crate::replay::ReplayWindow;
use crate::secret::{BASE_KEY_LEN, BaseKey};
use crate::sframe::SframeKey;
use crate::suite::CipherSuite;

/// The `type` an encrypted signal travels under; the application's own type is inside.
pub const SIGNAL_WIRE_TYPE: &str = "umbra-e2ee-signal-1";
/// HKDF-Expand info that turns a base key into the signal base key.
pub const SIGNAL_KEY_LABEL: &str = "umbra/e2ee/v1/signal";
/// Signals use one suite whatever the session's media suite is: one format for every SDK.
pub const SIGNAL_SUITE: CipherSuite = CipherSuite::Aes256CtrHmacSha512_80;
/// What the server relays in a signal's `data` (bytes of UTF-8; base64url is ASCII).
pub const MAX_SIGNAL_WIRE_DATA: usize = 8192;
/// The longest application type, as for plain signals.
pub const MAX_SIGNAL_TYPE_LEN: usize = 128;
/// The most `len(type) + len(data)` (UTF-8 bytes) an encrypted signal carries: base64url of at
/// most 6144 bytes fits 8192 characters; less the longest SFrame header (17), the tag (10) and
/// the type's length byte (1).
pub const MAX_SIGNAL_PLAINTEXT: usize = MAX_SIGNAL_WIRE_DATA / 4 * 3 - MAX_HEADER_LEN - 10 - 1;
/// Sender epochs (connection, KID) a receiver remembers; the least recently used goes first.
pub const MAX_SIGNAL_SENDERS: usize = 1024;

/// Why a signal could not be sealed or opened. Names match the product's error names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    /// Sealing or opening needs a secret and none is set.
    #[error("no encryption secret is set, so the signal cannot be encrypted or decrypted")]
    EncryptionSecretMissing,
    /// The signal does not authenticate under any secret this receiver holds: another secret,
    /// or it was altered, or it was made for another session or another sender.
    #[error("the signal does not authenticate with this encryption secret (encryption secret mismatch)")]
    EncryptionSecretMismatch,
    /// The signal authenticated but this sender's counter was seen already (or is older than
    /// the replay window): a replay.
    #[error("signal with KID {kid:#x} and counter {ctr} was already received or is too old (replayed)")]
    ReplayedSignal { kid: u64, ctr: u64 },
    /// The wire form cannot be taken apart (not base64url, no SFrame header, shorter than a
    /// tag), or what authenticated is not a valid signal.
    #[error("malformed encrypted signal: {0}")]
    Malformed(&'static str),
    /// The application's type breaks the signal type rule (sealing).
    #[error("signal type must be at most 128 letters, digits, '-' or '_'")]
    InvalidType,
    /// `type` and `data` together exceed [`MAX_SIGNAL_PLAINTEXT`] (sealing).
    #[error("an encrypted signal carries at most {max} bytes of type and data; this one has {len}")]
    TooLarge { len: usize, max: usize },
    /// The crypto backend or the random number generator failed.
    #[error("signal crypto failed: {0}")]
    Crypto(FrameError),
}

impl SignalError {
    /// The reason's name in docs/e2ee-protocol.md §12.3, the same in every SDK.
    pub fn name(&self) -> &'static str {
        match self {
            SignalError::EncryptionSecretMissing => "EncryptionSecretMissing",
            SignalError::EncryptionSecretMismatch => "EncryptionSecretMismatch",
            SignalError::ReplayedSignal { .. } => "ReplayedSignal",
            SignalError::Malformed(_) | SignalError::Crypto(_) => "DecryptionInternalError",
            SignalError::InvalidType | SignalError::TooLarge { .. } => "InvalidParameter",
        }
    }
}

/// A signal as the application sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlainSignal {
    /// Empty when the sender gave no type.
    pub signal_type: String,
    pub data: String,
}

/// The key every signal key is derived from: `HKDF-SHA-512(salt = "", ikm = base_key,
/// info = "umbra/e2ee/v1/signal", 32)`. Media keys come from the same extract with the SFrame
/// labels, so the two never coincide.
fn signal_base_key(base: &BaseKey) -> Result<Zeroizing<[u8; BASE_KEY_LEN]>, SignalError> {
    struct Len;
    impl hkdf::KeyType for Len {
        fn len(&self) -> usize {
            BASE_KEY_LEN
        }
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA512, &[]).extract(base.as_bytes());
    let mut out = Zeroizing::new([0u8; BASE_KEY_LEN]);
    prk.expand(&[SIGNAL_KEY_LABEL.as_bytes()], Len)
        .and_then(|okm| okm.fill(&mut out[..]))
        .map_err(|_| SignalError::Crypto(FrameError::Crypto("HKDF signal key")))?;
    Ok(out)
}

/// The signal base key, for test vectors and second implementations.
#[doc(hidden)]
pub fn signal_base_key_bytes(base: &BaseKey) -> Result<[u8; BASE_KEY_LEN], SignalError> {
    Ok(*signal_base_key(base)?)
}

fn random_kid() -> Result<u64, SignalError> {
    let mut kid = [0u8; 8];
    getrandom::fill(&mut kid).map_err(|_| SignalError::Crypto(FrameError::Randomness))?;
    Ok(u64::from_be_bytes(kid))
}

fn sender_key(base: &BaseKey, kid: u64) -> Result<SframeKey, SignalError> {
    SframeKey::derive(SIGNAL_SUITE, &signal_base_key(base)?[..], kid).map_err(SignalError::Crypto)
}

/// `BE16(len(session_id)) || session_id || BE16(len(sender)) || sender`: the AAD after the
/// SFrame header. Ids longer than 65535 bytes cannot be bound and are refused.
fn metadata(session_id: &str, sender: &str) -> Result<Vec<u8>, SignalError> {
    let mut m = Vec::with_capacity(4 + session_id.len() + sender.len());
    for part in [session_id, sender] {
        let len = u16::try_from(part.len()).map_err(|_| SignalError::Malformed("session or connection id too long"))?;
        m.extend_from_slice(&len.to_be_bytes());
        m.extend_from_slice(part.as_bytes());
    }
    Ok(m)
}

fn valid_type(t: &str) -> bool {
    t.len() <= MAX_SIGNAL_TYPE_LEN && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One participant's outgoing signals for one secret and one connection. Make a new one when
/// either changes: it draws a new KID and starts its counter at 0.
pub struct SignalSealer {
    /// Kept to rekey when the counter runs out.
    signal_key: Zeroizing<[u8; BASE_KEY_LEN]>,
    key: SframeKey,
    kid: u64,
    ctr: u64,
    sender: String,
}

impl SignalSealer {
    /// A sealer with a fresh random KID for `sender` (this client's connection id).
    pub fn new(base: &BaseKey, sender: &str) -> Result<Self, SignalError> {
        Self::with_kid(base, sender, random_kid()?, 0)
    }

    /// A sealer with a chosen KID and first counter: test vectors only. Reusing a KID with a
    /// counter already spent reuses a nonce.
    #[doc(hidden)]
    pub fn with_kid(base: &BaseKey, sender: &str, kid: u64, ctr: u64) -> Result<Self, SignalError> {
        let signal_key = signal_base_key(base)?;
        let key = SframeKey::derive(SIGNAL_SUITE, &signal_key[..], kid).map_err(SignalError::Crypto)?;
        Ok(Self { signal_key, key, kid, ctr, sender: sender.to_owned() })
    }

    pub fn kid(&self) -> u64 {
        self.kid
    }

    /// The connection id this sealer binds.
    pub fn sender(&self) -> &str {
        &self.sender
    }

    /// Seals `type` (empty for none) and `data` into the text of the wire signal's `data`; the
    /// wire `type` is [`SIGNAL_WIRE_TYPE`].
    pub fn seal(&mut self, session_id: &str, signal_type: &str, data: &str) -> Result<String, SignalError> {
        if !valid_type(signal_type) {
            return Err(SignalError::InvalidType);
        }
        let len = signal_type.len() + data.len();
        if len > MAX_SIGNAL_PLAINTEXT {
            return Err(SignalError::TooLarge { len, max: MAX_SIGNAL_PLAINTEXT });
        }
        if self.ctr == u64::MAX {
            // Never use the last counter value, never wrap: a new KID starts again at 0.
            self.kid = random_kid()?;
            self.key = SframeKey::derive(SIGNAL_SUITE, &self.signal_key[..], self.kid).map_err(SignalError::Crypto)?;
            self.ctr = 0;
        }
        let ctr = self.ctr;
        self.ctr += 1;
        let mut pt = Zeroizing::new(Vec::with_capacity(1 + len));
        pt.push(signal_type.len() as u8);
        pt.extend_from_slice(signal_type.as_bytes());
        pt.extend_from_slice(data.as_bytes());
        let meta = metadata(session_id, &self.sender)?;
        let sealed = self.key.encrypt(self.kid, ctr, &meta, &pt).map_err(SignalError::Crypto)?;
        Ok(URL_SAFE_NO_PAD.encode(sealed))
    }
}

struct SenderEpoch {
    /// The key ring epoch the key came from; the entry dies with it.
    epoch: u64,
    key: SframeKey,
    window: ReplayWindow,
    last_used: u64,
}

/// A receiver's state for every sender's signals: keys found per (connection, KID) and their
/// replay windows. Shares the session's [`KeyRing`] with media, so a new secret and its grace
/// period apply to signals as to frames.
#[derive(Default)]
pub struct SignalOpener {
    senders: HashMap<(String, u64), SenderEpoch>,
    uses: u64,
}

impl SignalOpener {
    pub fn new() -> Self {
        Self::default()
    }

    /// Opens the `data` of a wire signal of type [`SIGNAL_WIRE_TYPE`]. `from` is the sender's
    /// connection id as the server gave it (`None` for REST signals, which can never
    /// authenticate). Only a signal that authenticated and was not seen before moves any state.
    pub fn open(
        &mut self,
        ring: &KeyRing,
        now: Instant,
        session_id: &str,
        from: Option<&str>,
        wire_data: &str,
    ) -> Result<PlainSignal, SignalError> {
        if !ring.has_secret() {
            return Err(SignalError::EncryptionSecretMissing);
        }
        if wire_data.len() > MAX_SIGNAL_WIRE_DATA {
            return Err(SignalError::Malformed("longer than a signal can be"));
        }
        let sealed = URL_SAFE_NO_PAD.decode(wire_data).map_err(|_| SignalError::Malformed("not base64url"))?;
        let (header, _) = Header::decode(&sealed).map_err(|_| SignalError::Malformed("no SFrame header"))?;
        let sender = from.unwrap_or("");
        let meta = metadata(session_id, sender)?;
        let id = (sender.to_owned(), header.kid);

        if let Some(entry) = self.senders.get(&id)
            && !ring.is_live(entry.epoch, now)
        {
            self.senders.remove(&id);
        }
        let pt = match self.senders.get(&id) {
            Some(entry) => match entry.key.decrypt(&meta, &sealed).map_err(frame_error)? {
                Ok((_, pt)) => pt,
                Err(_) => return Err(SignalError::EncryptionSecretMismatch),
            },
            None => {
                let mut found = None;
                for (epoch, base) in ring.candidates(now) {
                    let key = sender_key(base, header.kid)?;
                    if let Ok((_, pt)) = key.decrypt(&meta, &sealed).map_err(frame_error)? {
                        found = Some((epoch, key, pt));
                        break;
                    }
                }
                let Some((epoch, key, pt)) = found else {
                    return Err(SignalError::EncryptionSecretMismatch);
                };
                self.make_room();
                self.senders.insert(id.clone(), SenderEpoch { epoch, key, window: ReplayWindow::new(), last_used: 0 });
                pt
            }
        };
        let pt = Zeroizing::new(pt);
        self.uses += 1;
        let uses = self.uses;
        let Some(entry) = self.senders.get_mut(&id) else {
            return Err(SignalError::Malformed("sender state vanished"));
        };
        entry.last_used = uses;
        if !entry.window.check(header.ctr) {
            return Err(SignalError::ReplayedSignal { kid: header.kid, ctr: header.ctr });
        }
        entry.window.accept(header.ctr);
        parse_plaintext(&pt)
    }

    /// Forgets a connection's senders (it left the session; its id is not reused).
    pub fn forget(&mut self, connection_id: &str) {
        self.senders.retain(|(c, _), _| c != connection_id);
    }

    /// Sender epochs held now.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    fn make_room(&mut self) {
        while self.senders.len() >= MAX_SIGNAL_SENDERS {
            let Some(oldest) = self.senders.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| k.clone()) else {
                return;
            };
            self.senders.remove(&oldest);
        }
    }
}

fn frame_error(e: FrameError) -> SignalError {
    match e {
        FrameError::Truncated(_) => SignalError::Malformed("shorter than its SFrame header and tag"),
        other => SignalError::Crypto(other),
    }
}

/// `BE8(len(type)) || type || data`, checked as strictly as a sender checks it.
fn parse_plaintext(pt: &[u8]) -> Result<PlainSignal, SignalError> {
    let (&type_len, rest) = pt.split_first().ok_or(SignalError::Malformed("empty plaintext"))?;
    let type_len = usize::from(type_len);
    if rest.len() < type_len {
        return Err(SignalError::Malformed("type runs past the plaintext"));
    }
    let (ty, data) = rest.split_at(type_len);
    let ty = std::str::from_utf8(ty).map_err(|_| SignalError::Malformed("type is not UTF-8"))?;
    if !valid_type(ty) {
        return Err(SignalError::Malformed("type breaks the signal type rule"));
    }
    let data = std::str::from_utf8(data).map_err(|_| SignalError::Malformed("data is not UTF-8"))?;
    Ok(PlainSignal { signal_type: ty.to_owned(), data: data.to_owned() })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn key(b: u8) -> BaseKey {
        BaseKey::from_bytes([b; BASE_KEY_LEN])
    }

    fn ring(b: u8, now: Instant) -> KeyRing {
        let mut r = KeyRing::new(CipherSuite::default());
        r.set_base_key(key(b), now);
        r
    }

    #[test]
    fn round_trip_and_replay() {
        let now = Instant::now();
        let mut tx = SignalSealer::new(&key(1), "conn-a").unwrap();
        let mut rx = SignalOpener::new();
        let r = ring(1, now);
        let w1 = tx.seal("s1", "chat", "hello").unwrap();
        let w2 = tx.seal("s1", "", "").unwrap();
        assert_eq!(
            rx.open(&r, now, "s1", Some("conn-a"), &w1).unwrap(),
            PlainSignal { signal_type: "chat".into(), data: "hello".into() }
        );
        assert_eq!(rx.open(&r, now, "s1", Some("conn-a"), &w2).unwrap().data, "");
        assert_eq!(
            rx.open(&r, now, "s1", Some("conn-a"), &w1),
            Err(SignalError::ReplayedSignal { kid: tx.kid(), ctr: 0 })
        );
        assert_eq!(rx.open(&r, now, "s2", Some("conn-a"), &w1), Err(SignalError::EncryptionSecretMismatch));
        assert_eq!(rx.open(&r, now, "s1", Some("conn-b"), &w1), Err(SignalError::EncryptionSecretMismatch));
        assert_eq!(rx.open(&r, now, "s1", None, &w1), Err(SignalError::EncryptionSecretMismatch));
        let mut other = SignalOpener::new();
        assert_eq!(
            other.open(&ring(2, now), now, "s1", Some("conn-a"), &w1),
            Err(SignalError::EncryptionSecretMismatch)
        );
    }

    #[test]
    fn previous_secret_works_during_the_grace_period_only() {
        let t0 = Instant::now();
        let mut tx = SignalSealer::new(&key(1), "c").unwrap();
        let mut r = ring(1, t0);
        r.set_base_key(key(2), t0);
        let mut rx = SignalOpener::new();
        assert!(rx.open(&r, t0, "s", Some("c"), &tx.seal("s", "", "x").unwrap()).is_ok());
        let late = t0 + Duration::from_secs(6);
        assert_eq!(
            rx.open(&r, late, "s", Some("c"), &tx.seal("s", "", "y").unwrap()),
            Err(SignalError::EncryptionSecretMismatch)
        );
    }

    #[test]
    fn limits_and_garbage() {
        let now = Instant::now();
        let mut tx = SignalSealer::new(&key(1), "c").unwrap();
        let max_data = "x".repeat(MAX_SIGNAL_PLAINTEXT - 4);
        let wire = tx.seal("s", "chat", &max_data).unwrap();
        assert!(wire.len() <= MAX_SIGNAL_WIRE_DATA, "{}", wire.len());
        assert_eq!(
            tx.seal("s", "chat", &format!("{max_data}x")),
            Err(SignalError::TooLarge { len: MAX_SIGNAL_PLAINTEXT + 1, max: MAX_SIGNAL_PLAINTEXT })
        );
        assert_eq!(tx.seal("s", "no spaces", ""), Err(SignalError::InvalidType));
        let mut rx = SignalOpener::new();
        let r = ring(1, now);
        // Zero bytes read as an SFrame header (KID 0, counter 0) and a too-short or forged body.
        assert_eq!(rx.open(&r, now, "s", Some("c"), &"A".repeat(20)), Err(SignalError::EncryptionSecretMismatch));
        for bad in ["", "!!", "AA", "AAAAAAAA", "_w", "AAA=", "AAB", &"A".repeat(9000)] {
            assert!(matches!(rx.open(&r, now, "s", Some("c"), bad), Err(SignalError::Malformed(_))), "{bad:?}");
        }
        let none = KeyRing::new(CipherSuite::default());
        assert_eq!(rx.open(&none, now, "s", Some("c"), &wire), Err(SignalError::EncryptionSecretMissing));
        assert!(rx.is_empty(), "nothing authenticated, nothing remembered");
    }

    #[test]
    fn every_flipped_bit_is_rejected() {
        let now = Instant::now();
        let mut tx = SignalSealer::with_kid(&key(1), "c", 7, 0).unwrap();
        let raw = URL_SAFE_NO_PAD.decode(tx.seal("s", "t", "data").unwrap()).unwrap();
        let r = ring(1, now);
        for i in 0..raw.len() * 8 {
            let mut b = raw.clone();
            b[i / 8] ^= 1 << (i % 8);
            let mut rx = SignalOpener::new();
            assert!(rx.open(&r, now, "s", Some("c"), &URL_SAFE_NO_PAD.encode(&b)).is_err(), "bit {i}");
        }
    }

    #[test]
    fn counter_never_wraps() {
        let now = Instant::now();
        let mut tx = SignalSealer::with_kid(&key(1), "c", 5, u64::MAX - 1).unwrap();
        let mut rx = SignalOpener::new();
        let r = ring(1, now);
        rx.open(&r, now, "s", Some("c"), &tx.seal("s", "", "a").unwrap()).unwrap();
        assert_eq!(tx.kid(), 5);
        rx.open(&r, now, "s", Some("c"), &tx.seal("s", "", "b").unwrap()).unwrap();
        assert_ne!(tx.kid(), 5, "a new KID instead of counter 2^64-1");
    }

    #[test]
    fn sender_memory_is_bounded() {
        let now = Instant::now();
        let r = ring(1, now);
        let mut rx = SignalOpener::new();
        for i in 0..MAX_SIGNAL_SENDERS + 5 {
            let mut tx = SignalSealer::with_kid(&key(1), &format!("c{i}"), i as u64, 0).unwrap();
            rx.open(&r, now, "s", Some(&format!("c{i}")), &tx.seal("s", "", "x").unwrap()).unwrap();
        }
        assert_eq!(rx.len(), MAX_SIGNAL_SENDERS);
        rx.forget("c1000");
        assert_eq!(rx.len(), MAX_SIGNAL_SENDERS - 1);
    }
}
