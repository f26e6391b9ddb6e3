//! Columns to records, the same for every engine: what a row must hold to be a session.

use super::StoreError;
use crate::model::{ArchiveMode, MediaMode, Session};

/// A `sessions` row as the engines read it (the order of `SESSION_COLS`).
pub struct SessionRow {
    pub id: String,
    pub api_key: String,
    pub media_mode: String,
    pub archive_mode: String,
    pub location: Option<String>,
    pub cipher_suite: Option<i64>,
    pub archive_name: Option<String>,
    pub archive_resolution: Option<String>,
    pub created_ms: i64,
}

pub const SESSION_COLS: &str =
    "id, api_key, media_mode, archive_mode, location, cipher_suite, archive_name, archive_resolution, created_ms";

pub const PROJECT_COLS: &str = "api_key, name, secret, e2ee_enabled, created_ms";

impl TryFrom<SessionRow> for Session {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        let media_mode = MediaMode::parse(&r.media_mode)
            .ok_or_else(|| StoreError::Corrupt(format!("session {}: media mode {:?}", r.id, r.media_mode)))?;
        let archive_mode = ArchiveMode::parse(&r.archive_mode)
            .ok_or_else(|| StoreError::Corrupt(format!("session {}: archive mode {:?}", r.id, r.archive_mode)))?;
        let cipher_suite = r
            .cipher_suite
            .map(|s| u16::try_from(s).map_err(|_| StoreError::Corrupt(format!("session {}: cipher suite {s}", r.id))))
            .transpose()?;
        Ok(Session {
            id: r.id,
            api_key: r.api_key,
            media_mode,
            archive_mode,
            location: r.location,
            cipher_suite,
            archive_name: r.archive_name,
            archive_resolution: r.archive_resolution,
            created_ms: r.created_ms,
        })
    }
}
