//! The things the server keeps: projects, sessions, roles, and the choices a session is made with.

use serde::Serialize;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// Clients send media to each other (`p2p.preference=enabled`).
    Relayed,
    /// Media goes through the media router (`p2p.preference=disabled`).
    Routed,
}

impl MediaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaMode::Relayed => "relayed",
            MediaMode::Routed => "routed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "relayed" => Some(MediaMode::Relayed),
            "routed" => Some(MediaMode::Routed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveMode {
    Manual,
    Always,
}

impl ArchiveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveMode::Manual => "manual",
            ArchiveMode::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(ArchiveMode::Manual),
            "always" => Some(ArchiveMode::Always),
            _ => None,
        }
    }
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    #[serde(rename = "publisher")]
    Publisher,
    #[serde(rename = "subscriber")]
    Subscriber,
    #[serde(rename = "moderator")]
    Moderator,
    #[serde(rename = "publisheronly")]
    PublisherOnly,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "publisher" => Some(Role::Publisher),
            "subscriber" => Some(Role::Subscriber),
            "moderator" => Some(Role::Moderator),
            "publisheronly" => Some(Role::PublisherOnly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Moderator => "moderator",
            Role::PublisherOnly => "publisheronly",
        }
    }

    pub fn can_publish(self) -> bool {
        !matches!(self, Role::Subscriber)
    }

    pub fn can_subscribe(self) -> bool {
        !matches!(self, Role::PublisherOnly)
    }

    /// OpenTok documents `publisheronly` as unable to send signals.
    pub fn can_signal(self) -> bool {
        !matches!(self, Role::PublisherOnly)
    }

    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Moderator)
    }
}
