//! The default store: one SQLite file in WAL mode, so the CLI can add projects while the server
//! runs and readers never wait for a writer.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

use super::rows::{PROJECT_COLS, SESSION_COLS, SessionRow};
use super::{Store, StoreError};
use crate::model::{Project, Session};

pub const DB_FILE: &str = "umbra.sqlite3";

/// Schema migrations, applied in order; `PRAGMA user_version` records how many have run. The
/// first uses IF NOT EXISTS because databases made before migrations existed already hold it
/// (at user_version 0). Append, never edit: a released migration has run somewhere.
const MIGRATIONS: &[&str] = &["
CREATE TABLE IF NOT EXISTS projects (
    api_key      TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    secret       TEXT NOT NULL,
    e2ee_enabled INTEGER NOT NULL,
    created_ms   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id                 TEXT PRIMARY KEY,
    api_key            TEXT NOT NULL REFERENCES projects(api_key),
    media_mode         TEXT NOT NULL,
    archive_mode       TEXT NOT NULL,
    location           TEXT,
    cipher_suite       INTEGER,
    archive_name       TEXT,
    archive_resolution TEXT,
    created_ms         INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_by_project ON sessions(api_key);
"];

/// A single connection behind a mutex: every query is a short indexed lookup, and SQLite
/// serialises writers anyway.
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating if needed) `dir/umbra.sqlite3`.
    pub fn open_dir(dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir)
            .map_err(|source| StoreError::DataDir { path: dir.display().to_string(), source })?;
        Self::open(&dir.join(DB_FILE))
    }

    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let mut conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(5))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Corrupt(format!("journal mode is {mode}, WAL was refused")));
        }
        conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")?;
        migrate(&mut conn)?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    /// How many migrations the database has run.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: use the connection.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs the missing migrations, each with its version bump in one transaction (a crash leaves
/// the database at a whole version).
fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
    }
    Ok(())
}

fn project_from_row(r: &Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        api_key: r.get(0)?,
        name: r.get(1)?,
        secret: r.get(2)?,
        e2ee_enabled: r.get::<_, i64>(3)? != 0,
        created_ms: r.get(4)?,
    })
}

fn unique_violation(e: &rusqlite::Error) -> Option<String> {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) if f.code == ErrorCode::ConstraintViolation => {
            Some(msg.clone().unwrap_or_default())
        }
        _ => None,
    }
}

impl Store for SqliteStore {
    fn insert_project(&self, p: &Project) -> Result<(), StoreError> {
        let r = self.conn().execute(
            &format!("INSERT INTO projects ({PROJECT_COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
            params![p.api_key, p.name, p.secret, p.e2ee_enabled as i64, p.created_ms],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) => match unique_violation(&e) {
                Some(m) if m.contains("projects.name") => Err(StoreError::DuplicateName(p.name.clone())),
                Some(_) => Err(StoreError::DuplicateId(p.api_key.clone())),
                None => Err(e.into()),
            },
        }
    }

    fn project(&self, api_key: &str) -> Result<Option<Project>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {PROJECT_COLS} FROM projects WHERE api_key = ?1"), [api_key], project_from_row)
            .optional()?)
    }

    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        Ok(self
            .conn()
            .query_row(&format!("SELECT {PROJECT_COLS} FROM projects WHERE name = ?1"), [name], project_from_row)
            .optional()?)
    }

    fn projects(&self) -> Result<Vec<Project>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("SELECT {PROJECT_COLS} FROM projects ORDER BY created_ms, name"))?;
        let rows = stmt.query_map([], project_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn set_e2ee_enabled(&self, api_key: &str, enabled: bool) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute("UPDATE projects SET e2ee_enabled = ?2 WHERE api_key = ?1", params![api_key, enabled as i64])?;
        Ok(n == 1)
    }

    fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        let r = self.conn().execute(
            &format!("INSERT INTO sessions ({SESSION_COLS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"),
            params![
                s.id,
                s.api_key,
                s.media_mode.as_str(),
                s.archive_mode.as_str(),
                s.location,
                s.cipher_suite,
                s.archive_name,
                s.archive_resolution,
                s.created_ms
            ],
        );
        match r {
            Ok(_) => Ok(()),
            Err(e) if unique_violation(&e).is_some() => Err(StoreError::DuplicateId(s.id.clone())),
            Err(e) => Err(e.into()),
        }
    }

    fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row = self
            .conn()
            .query_row(&format!("SELECT {SESSION_COLS} FROM sessions WHERE id = ?1"), [id], |r| {
                Ok(SessionRow {
                    id: r.get(0)?,
                    api_key: r.get(1)?,
                    media_mode: r.get(2)?,
                    archive_mode: r.get(3)?,
                    location: r.get(4)?,
                    cipher_suite: r.get(5)?,
                    archive_name: r.get(6)?,
                    archive_resolution: r.get(7)?,
                    created_ms: r.get(8)?,
                })
            })
            .optional()?;
        row.map(Session::try_from).transpose()
    }

    fn session_count(&self) -> Result<u64, StoreError> {
        Ok(self.conn().query_row("SELECT COUNT(*) FROM sessions", [], |r| r.get::<_, i64>(0))? as u64)
    }

    fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn().execute("DELETE FROM sessions WHERE id = ?1", params![id])? > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArchiveMode, MediaMode};

    #[test]
    fn old_databases_are_migrated_and_newer_ones_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        {
            // What umbra wrote before migrations existed: the tables at user_version 0.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(MIGRATIONS[0]).unwrap();
            c.execute("INSERT INTO projects VALUES ('11111111', 'old', 's', 1, 1)", []).unwrap();
        }
        let st = SqliteStore::open(&path).unwrap();
        assert_eq!(st.schema_version().unwrap(), MIGRATIONS.len() as i64);
        assert_eq!(st.project("11111111").unwrap().unwrap().name, "old");
        drop(st);
        Connection::open(&path).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
        let e = SqliteStore::open(&path).err().unwrap();
        assert!(matches!(e, StoreError::SchemaTooNew { found: 99, .. }), "{e}");
    }

    fn project(key: &str, name: &str) -> Project {
        Project { api_key: key.into(), name: name.into(), secret: "s".repeat(40), e2ee_enabled: false, created_ms: 1 }
    }

    #[test]
    fn projects_and_sessions_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let st = SqliteStore::open_dir(dir.path()).unwrap();
            st.insert_project(&project("11111111", "a")).unwrap();
            assert!(matches!(st.insert_project(&project("22222222", "a")), Err(StoreError::DuplicateName(_))));
            assert!(matches!(st.insert_project(&project("11111111", "b")), Err(StoreError::DuplicateId(_))));
            assert!(st.set_e2ee_enabled("11111111", true).unwrap());
            assert!(!st.set_e2ee_enabled("99999999", true).unwrap());
            st.insert_session(&Session {
                id: "1_x".into(),
                api_key: "11111111".into(),
                media_mode: MediaMode::Routed,
                archive_mode: ArchiveMode::Manual,
                location: None,
                cipher_suite: Some(6),
                archive_name: None,
                archive_resolution: None,
                created_ms: 5,
            })
            .unwrap();
        }
        let st = SqliteStore::open_dir(dir.path()).unwrap();
        let p = st.project("11111111").unwrap().unwrap();
        assert!(p.e2ee_enabled);
        assert_eq!(st.project_by_name("a").unwrap().unwrap(), p);
        let s = st.session("1_x").unwrap().unwrap();
        assert_eq!((s.media_mode, s.cipher_suite, s.created_ms), (MediaMode::Routed, Some(6), 5));
        assert_eq!(st.session_count().unwrap(), 1);
        assert!(st.session("nope").unwrap().is_none());
        let mode: String = st.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
    }
}
