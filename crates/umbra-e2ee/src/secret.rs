//! The shared secret: its rule and the PBKDF2 step that turns it into a session's base key.

use std::num::NonZeroU32;

use aws_lc_rs::pbkdf2;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, SecretRuleViolation};

pub const MIN_SECRET_CHARS: usize = 8;
pub const MAX_SECRET_CHARS: usize = 256;
/// Domain-separation prefix of the PBKDF2 salt; bump `v1` if the protocol's key schedule changes.
pub const KDF_SALT_PREFIX: &str = "umbra/e2ee/v1/";
/// OWASP's 2023 figure for PBKDF2-HMAC-SHA256. The salt is bound to the session, so this cost
/// is paid per guess per session by anyone who records ciphertext at the router.
pub const PBKDF2_ITERATIONS: u32 = 600_000;
pub const BASE_KEY_LEN: usize = 32;

/// A secret that satisfies the secret rule. Its text is wiped from memory on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EncryptionSecret(String);

impl EncryptionSecret {
    /// Checks the secret rule: 8 to 256 Unicode scalar values. (A Rust `str` is always valid
    /// UTF-8, so it counts code points exactly as the Web SDK does with `[...secret].length`;
    /// `secret.length` in JavaScript would count UTF-16 units and is *not* the rule.)
    pub fn new(secret: &str) -> Result<Self, Error> {
        let chars = secret.chars().count();
        if chars < MIN_SECRET_CHARS {
            return Err(Error::InvalidEncryptionSecret(SecretRuleViolation::TooShort { chars }));
        }
        if chars > MAX_SECRET_CHARS {
            return Err(Error::InvalidEncryptionSecret(SecretRuleViolation::TooLong { chars }));
        }
        Ok(Self(secret.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for EncryptionSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptionSecret(..)")
    }
}

/// The 32-byte key from which every sender's SFrame key is derived. Wiped on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct BaseKey([u8; BASE_KEY_LEN]);

impl BaseKey {
    /// `PBKDF2-HMAC-SHA256(UTF-8(secret), "umbra/e2ee/v1/" || UTF-8(session_id), 600000, 32)`.
    /// Deliberately slow (a few hundred ms): run it off the media path.
    pub fn derive(secret: &EncryptionSecret, session_id: &str) -> Self {
        Self::derive_with_iterations(secret, session_id, PBKDF2_ITERATIONS)
    }

    /// As [`BaseKey::derive`] with another iteration count. Only for tests and benchmarks: the
    /// protocol fixes 600 000, and peers using another count will never interoperate.
    #[doc(hidden)]
    pub fn derive_with_iterations(secret: &EncryptionSecret, session_id: &str, iterations: u32) -> Self {
        let mut salt = Zeroizing::new(Vec::with_capacity(KDF_SALT_PREFIX.len() + session_id.len()));
        salt.extend_from_slice(KDF_SALT_PREFIX.as_bytes());
        salt.extend_from_slice(session_id.as_bytes());
        let mut key = [0u8; BASE_KEY_LEN];
        let iterations = NonZeroU32::new(iterations.max(1)).unwrap_or(NonZeroU32::MIN);
        pbkdf2::derive(pbkdf2::PBKDF2_HMAC_SHA256, iterations, &salt, secret.as_str().as_bytes(), &mut key);
        Self(key)
    }

    /// Wraps raw key bytes (test vectors, or a key agreed by other means).
    pub fn from_bytes(bytes: [u8; BASE_KEY_LEN]) -> Self {
        Self(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; BASE_KEY_LEN] {
        &self.0
    }
}

impl std::fmt::Debug for BaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BaseKey(..)")
    }
}
