//! The AEADs of RFC 9605 §4.5 over aws-lc (the same library, and assembly, as `openssl`).

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128, AES_256};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;

use crate::error::FrameError;
use crate::suite::{CipherSuite, NONCE_LEN, SuiteHash, SuiteKind};

/// Outcome of opening a ciphertext whose tag did not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailed;

/// A keyed AEAD for one SFrame key.
pub struct Aead {
    suite: CipherSuite,
    inner: Inner,
}

enum Inner {
    CtrHmac { enc: EncryptingKey, auth: hmac::Key },
    Gcm(LessSafeKey),
}

impl Aead {
    /// `key` is the suite's `Nk` bytes (for CTR+HMAC: the AES key, then the HMAC key).
    pub fn new(suite: CipherSuite, key: &[u8]) -> Result<Self, FrameError> {
        if key.len() != suite.key_len() {
            return Err(FrameError::Crypto("key setup (wrong key length)"));
        }
        let inner = match suite.kind() {
            SuiteKind::CtrHmac { aes_key_len } => {
                let (enc_key, auth_key) = key.split_at(aes_key_len);
                let alg = if aes_key_len == 16 { &AES_128 } else { &AES_256 };
                let unbound = UnboundCipherKey::new(alg, enc_key).map_err(|_| FrameError::Crypto("AES key setup"))?;
                let enc = EncryptingKey::ctr(unbound).map_err(|_| FrameError::Crypto("AES-CTR key setup"))?;
                let hmac_alg = match suite.hash() {
                    SuiteHash::Sha256 => hmac::HMAC_SHA256,
                    SuiteHash::Sha512 => hmac::HMAC_SHA512,
                };
                Inner::CtrHmac { enc, auth: hmac::Key::new(hmac_alg, auth_key) }
            }
            SuiteKind::Gcm => {
                let alg = if key.len() == 16 { &aead::AES_128_GCM } else { &aead::AES_256_GCM };
                let unbound = UnboundKey::new(alg, key).map_err(|_| FrameError::Crypto("AES-GCM key setup"))?;
                Inner::Gcm(LessSafeKey::new(unbound))
            }
        };
        Ok(Self { suite, inner })
    }

    /// Encrypts `in_out` in place and appends the tag to `tag_out`.
    pub fn seal(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        in_out: &mut [u8],
        tag_out: &mut Vec<u8>,
    ) -> Result<(), FrameError> {
        match &self.inner {
            Inner::CtrHmac { enc, auth } => {
                ctr_xor(enc, nonce, in_out)?;
                let tag = hmac_tag(auth, self.suite.tag_len(), nonce, aad, in_out);
                tag_out.extend_from_slice(&tag.as_ref()[..self.suite.tag_len()]);
            }
            Inner::Gcm(key) => {
                let tag = key
                    .seal_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), in_out)
                    .map_err(|_| FrameError::Crypto("AES-GCM seal"))?;
                tag_out.extend_from_slice(tag.as_ref());
            }
        }
        Ok(())
    }

    /// Verifies `tag` over `ciphertext` and only then decrypts it in place. On failure the
    /// buffer holds unverified data that the caller must discard.
    pub fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        ciphertext: &mut [u8],
        tag: &[u8],
    ) -> Result<Result<(), AuthFailed>, FrameError> {
        if tag.len() != self.suite.tag_len() {
            return Ok(Err(AuthFailed));
        }
        match &self.inner {
            Inner::CtrHmac { enc, auth } => {
                let expected = hmac_tag(auth, self.suite.tag_len(), nonce, aad, ciphertext);
                if verify_slices_are_equal(&expected.as_ref()[..tag.len()], tag).is_err() {
                    return Ok(Err(AuthFailed));
                }
                ctr_xor(enc, nonce, ciphertext)?;
                Ok(Ok(()))
            }
            Inner::Gcm(key) => {
                match key.open_in_place_separate_tag(Nonce::assume_unique_for_key(*nonce), Aad::from(aad), tag, ciphertext) {
                    Ok(_) => Ok(Ok(())),
                    Err(_) => Ok(Err(AuthFailed)),
                }
            }
        }
    }
}

/// AES-CTR with the initial counter block `nonce || 0x00000000` (RFC 9605 §4.5.1).
fn ctr_xor(key: &EncryptingKey, nonce: &[u8; NONCE_LEN], data: &mut [u8]) -> Result<(), FrameError> {
    if data.is_empty() {
        return Ok(());
    }
    let mut block = [0u8; 16];
    block[..NONCE_LEN].copy_from_slice(nonce);
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(block)))
        .map(|_| ())
        .map_err(|_| FrameError::Crypto("AES-CTR"))
}

/// `HMAC(auth_key, len(aad) || len(ct) || Nt || nonce || aad || ct)`, lengths as 64-bit
/// big-endian integers (RFC 9605 §4.5.1).
fn hmac_tag(key: &hmac::Key, tag_len: usize, nonce: &[u8; NONCE_LEN], aad: &[u8], ct: &[u8]) -> hmac::Tag {
    let mut ctx = hmac::Context::with_key(key);
    ctx.update(&(aad.len() as u64).to_be_bytes());
    ctx.update(&(ct.len() as u64).to_be_bytes());
    ctx.update(&(tag_len as u64).to_be_bytes());
    ctx.update(nonce);
    ctx.update(aad);
    ctx.update(ct);
    ctx.sign()
}
