//! The AEADs of RFC 9605 §4.5.
//!
//! AES (CTR and GCM) runs on aws-lc. The HMAC of the CTR suites runs on the system's OpenSSL
//! libcrypto: its SHA-512 has an AVX2 code path that aws-lc and the RustCrypto `sha2` crate
//! lack, which made suite 6 1.55x faster here (see docs/performance.md).

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::cipher::{AES_128, AES_256, EncryptingKey, EncryptionContext, UnboundCipherKey};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::iv::FixedLength;
use openssl::hash::{DigestBytes, Hasher, MessageDigest};
use zeroize::Zeroizing;

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

// One per SFrame key (a stream holds at most 16), never in a hot array: inline is better than a
// pointer chase on every frame.
#[allow(clippy::large_enum_variant)]
enum Inner {
    CtrHmac { enc: EncryptingKey, auth: HmacKey },
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
                Inner::CtrHmac { enc, auth: HmacKey::new(suite.hash(), auth_key)? }
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
                let tag = auth.tag(self.suite.tag_len(), nonce, aad, in_out)?;
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
                let expected = auth.tag(self.suite.tag_len(), nonce, aad, ciphertext)?;
                if verify_slices_are_equal(&expected.as_ref()[..tag.len()], tag).is_err() {
                    return Ok(Err(AuthFailed));
                }
                ctr_xor(enc, nonce, ciphertext)?;
                Ok(Ok(()))
            }
            Inner::Gcm(key) => {
                match key.open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    tag,
                    ciphertext,
                ) {
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

/// HMAC (RFC 2104) with the inner and outer hash states precomputed once per key; each tag
/// clones them instead of rehashing the padded key.
struct HmacKey {
    inner: Hasher,
    outer: Hasher,
}

impl HmacKey {
    fn new(hash: SuiteHash, key: &[u8]) -> Result<Self, FrameError> {
        let (md, block) = match hash {
            SuiteHash::Sha256 => (MessageDigest::sha256(), 64),
            SuiteHash::Sha512 => (MessageDigest::sha512(), 128),
        };
        // Suite keys (32 or 64 bytes) are never longer than the block.
        if key.len() > block {
            return Err(FrameError::Crypto("HMAC key longer than the hash block"));
        }
        let mut ipad = Zeroizing::new(vec![0x36u8; block]);
        let mut opad = Zeroizing::new(vec![0x5cu8; block]);
        for (i, k) in key.iter().enumerate() {
            ipad[i] ^= k;
            opad[i] ^= k;
        }
        let start = |pad: &[u8]| -> Result<Hasher, FrameError> {
            let mut h = Hasher::new(md).map_err(|_| FrameError::Crypto("HMAC setup"))?;
            h.update(pad).map_err(|_| FrameError::Crypto("HMAC setup"))?;
            Ok(h)
        };
        Ok(Self { inner: start(&ipad)?, outer: start(&opad)? })
    }

    /// `HMAC(auth_key, len(aad) || len(ct) || Nt || nonce || aad || ct)`, lengths as 64-bit
    /// big-endian integers (RFC 9605 §4.5.1).
    fn tag(&self, tag_len: usize, nonce: &[u8; NONCE_LEN], aad: &[u8], ct: &[u8]) -> Result<DigestBytes, FrameError> {
        let fail = |_| FrameError::Crypto("HMAC");
        let mut inner = self.inner.clone();
        inner.update(&(aad.len() as u64).to_be_bytes()).map_err(fail)?;
        inner.update(&(ct.len() as u64).to_be_bytes()).map_err(fail)?;
        inner.update(&(tag_len as u64).to_be_bytes()).map_err(fail)?;
        inner.update(nonce).map_err(fail)?;
        inner.update(aad).map_err(fail)?;
        inner.update(ct).map_err(fail)?;
        let digest = inner.finish().map_err(fail)?;
        let mut outer = self.outer.clone();
        outer.update(&digest).map_err(fail)?;
        outer.finish().map_err(fail)
    }
}
