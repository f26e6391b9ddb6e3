//! SFrame cipher suites (RFC 9605 §4.5 and the AES-256-CTR suites 6–8 of
//! draft-barnes-sframe-iana-256) and their parameters.

use crate::error::Error;

/// Hash function used by a suite's HKDF and, for CTR+HMAC suites, its HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteHash {
    Sha256,
    Sha512,
}

/// How a suite turns a key into an AEAD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteKind {
    /// AES-CTR for confidentiality, truncated HMAC over the ciphertext for integrity.
    CtrHmac { aes_key_len: usize },
    /// AES-GCM with a 16-byte tag.
    Gcm,
}

/// An SFrame cipher suite. The default is suite 6, AES-256-CTR with HMAC-SHA-512 truncated to
/// 80 bits: AES-256 as the product promises, and a 10-byte tag that keeps per-frame overhead low.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u16)]
pub enum CipherSuite {
    Aes128CtrHmacSha256_80 = 1,
    Aes128CtrHmacSha256_64 = 2,
    Aes128CtrHmacSha256_32 = 3,
    Aes128GcmSha256_128 = 4,
    Aes256GcmSha512_128 = 5,
    #[default]
    Aes256CtrHmacSha512_80 = 6,
    Aes256CtrHmacSha512_64 = 7,
    Aes256CtrHmacSha512_32 = 8,
}

/// Length of every suite's nonce (and salt), in bytes.
pub const NONCE_LEN: usize = 12;

impl CipherSuite {
    pub const ALL: [CipherSuite; 8] = [
        Self::Aes128CtrHmacSha256_80,
        Self::Aes128CtrHmacSha256_64,
        Self::Aes128CtrHmacSha256_32,
        Self::Aes128GcmSha256_128,
        Self::Aes256GcmSha512_128,
        Self::Aes256CtrHmacSha512_80,
        Self::Aes256CtrHmacSha512_64,
        Self::Aes256CtrHmacSha512_32,
    ];

    /// The IANA value of the suite.
    pub fn id(self) -> u16 {
        self as u16
    }

    pub fn from_id(id: u16) -> Result<Self, Error> {
        Self::ALL.into_iter().find(|s| s.id() == id).ok_or(Error::UnsupportedCipherSuite(id))
    }

    pub fn hash(self) -> SuiteHash {
        match self {
            Self::Aes128CtrHmacSha256_80
            | Self::Aes128CtrHmacSha256_64
            | Self::Aes128CtrHmacSha256_32
            | Self::Aes128GcmSha256_128 => SuiteHash::Sha256,
            _ => SuiteHash::Sha512,
        }
    }

    pub fn kind(self) -> SuiteKind {
        match self {
            Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128 => SuiteKind::Gcm,
            Self::Aes128CtrHmacSha256_80 | Self::Aes128CtrHmacSha256_64 | Self::Aes128CtrHmacSha256_32 => {
                SuiteKind::CtrHmac { aes_key_len: 16 }
            }
            _ => SuiteKind::CtrHmac { aes_key_len: 32 },
        }
    }

    /// `Nk`: length of the SFrame key. For CTR+HMAC suites it is the AES key followed by the
    /// HMAC key, whose length is the hash's output size.
    pub fn key_len(self) -> usize {
        match self.kind() {
            SuiteKind::Gcm => match self.hash() {
                SuiteHash::Sha256 => 16,
                SuiteHash::Sha512 => 32,
            },
            SuiteKind::CtrHmac { aes_key_len } => aes_key_len + self.hash_len(),
        }
    }

    /// `Nt`: length of the authentication tag.
    pub fn tag_len(self) -> usize {
        match self {
            Self::Aes128GcmSha256_128 | Self::Aes256GcmSha512_128 => 16,
            Self::Aes128CtrHmacSha256_80 | Self::Aes256CtrHmacSha512_80 => 10,
            Self::Aes128CtrHmacSha256_64 | Self::Aes256CtrHmacSha512_64 => 8,
            Self::Aes128CtrHmacSha256_32 | Self::Aes256CtrHmacSha512_32 => 4,
        }
    }

    pub(crate) fn hash_len(self) -> usize {
        match self.hash() {
            SuiteHash::Sha256 => 32,
            SuiteHash::Sha512 => 64,
        }
    }
}

impl std::fmt::Display for CipherSuite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self {
            Self::Aes128CtrHmacSha256_80 => "AES_128_CTR_HMAC_SHA256_80",
            Self::Aes128CtrHmacSha256_64 => "AES_128_CTR_HMAC_SHA256_64",
            Self::Aes128CtrHmacSha256_32 => "AES_128_CTR_HMAC_SHA256_32",
            Self::Aes128GcmSha256_128 => "AES_128_GCM_SHA256_128",
            Self::Aes256GcmSha512_128 => "AES_256_GCM_SHA512_128",
            Self::Aes256CtrHmacSha512_80 => "AES_256_CTR_HMAC_SHA512_80",
            Self::Aes256CtrHmacSha512_64 => "AES_256_CTR_HMAC_SHA512_64",
            Self::Aes256CtrHmacSha512_32 => "AES_256_CTR_HMAC_SHA512_32",
        };
        write!(f, "{name} ({})", self.id())
    }
}
