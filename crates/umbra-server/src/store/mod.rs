//! Persistence behind a small trait, so the engine is a deployment choice: SQLite (the default,
//! one file in the data directory, zero setup) or PostgreSQL (`--database postgres://…`, for
//! several nodes sharing one store). Calls are blocking; async callers run them on the blocking
//! pool (see `state::AppState::with_store`).
//!
//! Each engine carries its own numbered migrations (its own SQL dialect, the same tables) and
//! applies the missing ones when it opens; a database written by a newer Umbra is refused
//! rather than guessed at.

mod postgres;
mod rows;
mod sqlite;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

use std::path::Path;

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
    Sqlite(#[from] rusqlite::Error),
    #[error("PostgreSQL error: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("cannot set up TLS for PostgreSQL: {0}")]
    Tls(#[from] openssl::error::ErrorStack),
    #[error("--database {0:?}: expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or postgresql://…)")]
    BadUrl(String),
    #[error("the database's schema is version {found}, newer than this umbra knows ({known}): run a newer umbra")]
    SchemaTooNew { found: i64, known: i64 },
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

/// Opens the store a deployment names: `database` (a `postgres://` URL) when given, otherwise
/// the SQLite file in `data_dir`.
pub fn open(database: Option<&str>, data_dir: &Path) -> Result<Box<dyn Store>, StoreError> {
    match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(Box::new(PostgresStore::connect(url)?))
        }
        Some(other) => Err(StoreError::BadUrl(redact(other))),
        None => Ok(Box::new(SqliteStore::open_dir(data_dir)?)),
    }
}

/// A database URL as it may appear in an error or a log: without its password.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            if userinfo.contains(':') { format!("{scheme}://{user}:***@{host}") } else { url.to_owned() }
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("postgres://umbra:hunter2@db:5432/umbra"), "postgres://umbra:***@db:5432/umbra");
        assert_eq!(redact("postgres://umbra@db/umbra"), "postgres://umbra@db/umbra");
        let e = open(Some("mysql://root:pw@db/x"), Path::new("/nonexistent")).err().unwrap();
        assert!(matches!(e, StoreError::BadUrl(ref u) if !u.contains("pw")), "{e}");
    }
}
