//! Persistence behind a small trait, so an engine other than SQLite can replace it. Calls are
//! blocking; async callers run them on the blocking pool (see `state::AppState::with_store`).

mod sqlite;

pub use sqlite::SqliteStore;

use crate::model::{Project, Session};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a project named {0:?} already exists")]
    DuplicateName(String),
    #[error("a record with id {0:?} already exists")]
    DuplicateId(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
}

pub trait Store: Send + Sync + 'static {
    fn insert_project(&self, project: &Project) -> Result<(), StoreError>;
    fn project(&self, api_key: &str) -> Result<Option<Project>, StoreError>;
    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError>;
    fn projects(&self) -> Result<Vec<Project>, StoreError>;
    /// Returns false when no project has that key.
    fn set_e2ee_enabled(&self, api_key: &str, enabled: bool) -> Result<bool, StoreError>;
    fn insert_session(&self, session: &Session) -> Result<(), StoreError>;
    fn session(&self, id: &str) -> Result<Option<Session>, StoreError>;
    fn session_count(&self) -> Result<u64, StoreError>;
    /// Returns false when there was no such session.
    fn delete_session(&self, id: &str) -> Result<bool, StoreError>;
}
