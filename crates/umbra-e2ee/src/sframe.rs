//! RFC 9605 proper: the per-KID key schedule (§4.4.2) and whole SFrame ciphertexts
//! (`header || ciphertext || tag`) with caller-supplied metadata (§4.4.3–4.4.4).

use aws_lc_rs::hkdf;
use zeroize::{Zeroize, Zeroizing};

use crate::aead::{Aead, AuthFailed};
use crate::error::FrameError;
use crate::header::Header;
use crate::suite::{CipherSuite, NONCE_LEN, SuiteHash};

/// The key, salt and keyed AEAD of one KID. `sframe_key` never leaves this struct.
pub struct SframeKey {
    suite: CipherSuite,
    aead: Aead,
    salt: [u8; NONCE_LEN],
}

impl Drop for SframeKey {
    fn drop(&mut self) {
        // The AES and HMAC key states wipe themselves (aws-lc, OpenSSL); the salt is ours.
        self.salt.zeroize();
    }
}

struct OkmLen(usize);
impl hkdf::KeyType for OkmLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// `"SFrame 1.0 Secret key " || BE64(KID) || BE16(suite)`; the salt label differs in one word.
fn label(kind: &str, kid: u64, suite: CipherSuite) -> Vec<u8> {
    let mut l = Vec::with_capacity(32);
    l.extend_from_slice(b"SFrame 1.0 Secret ");
    l.extend_from_slice(kind.as_bytes());
    l.push(b' ');
    l.extend_from_slice(&kid.to_be_bytes());
    l.extend_from_slice(&suite.id().to_be_bytes());
    l
}

impl SframeKey {
    /// `derive_key_salt(KID, base_key)` of RFC 9605 §4.4.2.
    pub fn derive(suite: CipherSuite, base_key: &[u8], kid: u64) -> Result<Self, FrameError> {
        let alg = match suite.hash() {
            SuiteHash::Sha256 => hkdf::HKDF_SHA256,
            SuiteHash::Sha512 => hkdf::HKDF_SHA512,
        };
        let prk = hkdf::Salt::new(alg, &[]).extract(base_key);
        let mut key = Zeroizing::new(vec![0u8; suite.key_len()]);
        let mut salt = [0u8; NONCE_LEN];
        let key_label = label("key", kid, suite);
        let salt_label = label("salt", kid, suite);
        prk.expand(&[&key_label], OkmLen(key.len()))
            .and_then(|okm| okm.fill(&mut key))
            .map_err(|_| FrameError::Crypto("HKDF key"))?;
        prk.expand(&[&salt_label], OkmLen(NONCE_LEN))
            .and_then(|okm| okm.fill(&mut salt))
            .map_err(|_| FrameError::Crypto("HKDF salt"))?;
        Self::from_parts(suite, &key, salt)
    }

    /// Builds a key from an already derived `sframe_key` and `sframe_salt`.
    pub fn from_parts(suite: CipherSuite, sframe_key: &[u8], salt: [u8; NONCE_LEN]) -> Result<Self, FrameError> {
        Ok(Self { suite, aead: Aead::new(suite, sframe_key)?, salt })
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn salt(&self) -> &[u8; NONCE_LEN] {
        &self.salt
    }

    /// `sframe_salt XOR BE96(ctr)`.
    pub fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }

    pub(crate) fn aead(&self) -> &Aead {
        &self.aead
    }

    /// The AEAD alone (RFC 9605 §4.5): `ciphertext || tag` of `plaintext` with the nonce for
    /// `ctr` and the given AAD.
    pub fn seal_raw(&self, ctr: u64, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut out = plaintext.to_vec();
        let mut tag = Vec::with_capacity(16);
        self.aead.seal(&self.nonce(ctr), aad, &mut out, &mut tag)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Inverse of [`seal_raw`](Self::seal_raw).
    pub fn open_raw(&self, ctr: u64, aad: &[u8], sealed: &[u8]) -> Result<Result<Vec<u8>, AuthFailed>, FrameError> {
        let Some(split) = sealed.len().checked_sub(self.suite.tag_len()) else {
            return Err(FrameError::Truncated("ciphertext shorter than its tag"));
        };
        let (ct, tag) = sealed.split_at(split);
        let mut pt = ct.to_vec();
        Ok(self.aead.open(&self.nonce(ctr), aad, &mut pt, tag)?.map(|()| pt))
    }

    /// Returns `header || ciphertext || tag` for `plaintext`, authenticating
    /// `header || metadata`.
    pub fn encrypt(&self, kid: u64, ctr: u64, metadata: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, FrameError> {
        let header = Header::new(kid, ctr);
        let mut out = Vec::with_capacity(header.len() + plaintext.len() + self.suite.tag_len());
        header.encode_into(&mut out);
        let mut aad = Vec::with_capacity(out.len() + metadata.len());
        aad.extend_from_slice(&out);
        aad.extend_from_slice(metadata);
        let body = out.len();
        out.extend_from_slice(plaintext);
        let (_, ct) = out.split_at_mut(body);
        let mut tag = Vec::with_capacity(16);
        self.aead.seal(&self.nonce(ctr), &aad, ct, &mut tag)?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Opens `header || ciphertext || tag`. `Ok(Err(AuthFailed))` when the tag does not verify.
    pub fn decrypt(&self, metadata: &[u8], sframe: &[u8]) -> Result<Result<(Header, Vec<u8>), AuthFailed>, FrameError> {
        let (header, hlen) = Header::decode(sframe)?;
        let tag_len = self.suite.tag_len();
        if sframe.len() < hlen + tag_len {
            return Err(FrameError::Truncated("SFrame ciphertext shorter than its tag"));
        }
        let (ct, tag) = sframe[hlen..].split_at(sframe.len() - hlen - tag_len);
        let mut aad = Vec::with_capacity(hlen + metadata.len());
        aad.extend_from_slice(&sframe[..hlen]);
        aad.extend_from_slice(metadata);
        let mut pt = ct.to_vec();
        Ok(self.aead.open(&self.nonce(header.ctr), &aad, &mut pt, tag)?.map(|()| (header, pt)))
    }
}
