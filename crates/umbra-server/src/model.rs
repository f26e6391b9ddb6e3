//! The things the server keeps: projects, sessions, roles, and the choices a session is made with.

/// The session choices and roles are the signaling protocol's, so that what is stored and what
/// `welcome` says can never disagree.
pub use umbra_protocol::{ArchiveMode, MediaMode, Role};

/// SFrame cipher suite used when an e2ee session does not ask for another:
/// AES_256_CTR_HMAC_SHA512_80 (draft-barnes-sframe-iana-256), the suite the crypto core uses.
pub const DEFAULT_CIPHER_SUITE: u16 = 6;

/// Suites a session may record: RFC 9605's 1–5 and the AES-256-CTR suites 6–8.
pub const KNOWN_CIPHER_SUITES: std::ops::RangeInclusive<u16> = 1..=8;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    /// Numeric, like OpenTok's, because some SDKs (Java's) hold the API key in an integer.
    pub api_key: String,
    pub name: String,
    /// 40 hex digits: never mistaken for a key-file path by the Python SDK.
    pub secret: String,
    pub e2ee_enabled: bool,
    pub created_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: String,
    pub api_key: String,
    pub media_mode: MediaMode,
    pub archive_mode: ArchiveMode,
    /// IPv4 location hint, kept because it is part of the OpenTok contract; unused for routing.
    pub location: Option<String>,
    /// `Some(suite)` when the session is end-to-end encrypted.
    pub cipher_suite: Option<u16>,
    pub archive_name: Option<String>,
    pub archive_resolution: Option<String>,
    pub created_ms: i64,
}

impl Session {
    pub fn e2ee(&self) -> bool {
        self.cipher_suite.is_some()
    }
}
