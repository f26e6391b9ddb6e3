//! The store on PostgreSQL (`umbra serve --database postgres://…`), for deployments where
//! several nodes share projects and sessions. The same tables as SQLite in PostgreSQL's types.
//!
//! One connection per process behind a mutex, like the SQLite store: every query is a short
//! indexed lookup, and the REST paths that use the store are not the hot path (signaling and
//! media never touch it). A connection that broke (database restarted, network cut) fails the
//! call that finds it broken and is replaced on the next one, so a node outlives its database's
//! restarts without its own.

use std::sync::{Mutex, MutexGuard};

use ::postgres::error::SqlState;
use ::postgres::{Client, Row};
use openssl::ssl::{SslConnector, SslMethod};
use postgres_openssl::MakeTlsConnector;

use super::rows::{PROJECT_COLS, SESSION_COLS, SessionRow};
use super::{Store, StoreError, redact};
use crate::model::{Project, Session};

/// Schema migrations, applied in order and recorded in `umbra_schema`. Append, never edit.
const MIGRATIONS: &[&str] = &["
CREATE TABLE projects (
    api_key      TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    secret       TEXT NOT NULL,
    e2ee_enabled BOOLEAN NOT NULL,
    created_ms   BIGINT NOT NULL
);
CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    api_key            TEXT NOT NULL REFERENCES projects(api_key),
    media_mode         TEXT NOT NULL,
    archive_mode       TEXT NOT NULL,
    location           TEXT,
    cipher_suite       INTEGER,
    archive_name       TEXT,
    archive_resolution TEXT,
    created_ms         BIGINT NOT NULL
);
CREATE INDEX sessions_by_project ON sessions(api_key);
"];

/// Serialises migrations between nodes that start at the same time (an arbitrary constant: the
/// key of a transaction-scoped advisory lock).
const MIGRATION_LOCK: i64 = 0x756d_6272_6100_0001;

pub struct PostgresStore {
    url: String,
    tls: MakeTlsConnector,
    client: Mutex<Option<Client>>,
}

impl Drop for PostgresStore {
    /// The blocking client runs a runtime of its own, which it blocks on when dropped: that
    /// panics when the last owner of the store is dropped on a tokio worker (the server ending
    /// its tasks at shutdown). The client goes on a plain thread instead.
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(client) = client {
            let _ = std::thread::Builder::new().name("umbra-pg-close".into()).spawn(move || drop(client));
        }
    }
}

impl PostgresStore {
    /// Connects and brings the schema up to date. TLS follows the URL's `sslmode` (`disable`,
    /// `prefer` — the default — or `require`), verifying the server against the system's CA
    /// store when it is used.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        url.parse::<::postgres::Config>().map_err(|_| StoreError::BadUrl(redact(url)))?;
        let tls = MakeTlsConnector::new(SslConnector::builder(SslMethod::tls())?.build());
        let mut client = Client::connect(url, tls.clone())?;
        migrate(&mut client)?;
        Ok(Self { url: url.to_owned(), tls, client: Mutex::new(Some(client)) })
    }

    /// How many migrations the database has run.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let mut c = self.client()?;
        let row = c.as_mut().map(|c| c.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM umbra_schema", &[]));
        match row.transpose()? {
            Some(r) => Ok(r.try_get(0)?),
            None => Ok(0),
        }
    }

    /// The connection, reconnected first if the last one broke.
    fn client(&self) -> Result<MutexGuard<'_, Option<Client>>, StoreError> {
        // A panic while holding the lock leaves at worst a broken connection, replaced below.
        let mut guard = self.client.lock().unwrap_or_else(|e| e.into_inner());
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            *guard = Some(Client::connect(&self.url, self.tls.clone())?);
        }
        Ok(guard)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Client) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let mut guard = self.client()?;
        match guard.as_mut() {
            Some(c) => f(c),
            None => Err(StoreError::Corrupt("no PostgreSQL connection".into())),
        }
    }
}

fn migrate(client: &mut Client) -> Result<(), StoreError> {
    let known = MIGRATIONS.len() as i64;
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS umbra_schema (version BIGINT NOT NULL)")?;
    let found: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM umbra_schema", &[])?.try_get(0)?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
        tx.batch_execute(sql)?;
        tx.execute("INSERT INTO umbra_schema (version) VALUES ($1)", &[&(i as i64 + 1)])?;
    }
    tx.commit()?;
    Ok(())
}

// try_get throughout: `Row::get` panics on a column of an unexpected type, and a store must
// report a damaged database, not crash on it.
fn project_from_row(r: &Row) -> Result<Project, StoreError> {
    Ok(Project {
        api_key: r.try_get(0)?,
        name: r.try_get(1)?,
        secret: r.try_get(2)?,
        e2ee_enabled: r.try_get(3)?,
        created_ms: r.try_get(4)?,
    })
}

/// The constraint a unique violation broke, if that is what the error is.
fn unique_violation(e: &::postgres::Error) -> Option<String> {
    let db = e.as_db_error()?;
    (db.code() == &SqlState::UNIQUE_VIOLATION).then(|| db.constraint().unwrap_or_default().to_owned())
}

impl Store for PostgresStore {
    fn insert_project(&self, p: &Project) -> Result<(), StoreError> {
        self.with(|c| {
            let sql = format!("INSERT INTO projects ({PROJECT_COLS}) VALUES ($1, $2, $3, $4, $5)");
            match c.execute(&sql, &[&p.api_key, &p.name, &p.secret, &p.e2ee_enabled, &p.created_ms]) {
                Ok(_) => Ok(()),
                Err(e) => match unique_violation(&e) {
                    Some(constraint) if constraint.contains("name") => Err(StoreError::DuplicateName(p.name.clone())),
                    Some(_) => Err(StoreError::DuplicateId(p.api_key.clone())),
                    None => Err(e.into()),
                },
            }
        })
    }

    fn project(&self, api_key: &str) -> Result<Option<Project>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE api_key = $1");
            c.query_opt(&sql, &[&api_key])?.as_ref().map(project_from_row).transpose()
        })
    }

    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {PROJECT_COLS} FROM projects WHERE name = $1");
            c.query_opt(&sql, &[&name])?.as_ref().map(project_from_row).transpose()
        })
    }

    fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.with(|c| {
            let sql = format!("SELECT {PROJECT_COLS} FROM projects ORDER BY created_ms, name");
            c.query(&sql, &[])?.iter().map(project_from_row).collect()
        })
    }

    fn set_e2ee_enabled(&self, api_key: &str, enabled: bool) -> Result<bool, StoreError> {
        self.with(|c| {
            Ok(c.execute("UPDATE projects SET e2ee_enabled = $2 WHERE api_key = $1", &[&api_key, &enabled])? == 1)
        })
    }

    fn insert_session(&self, s: &Session) -> Result<(), StoreError> {
        self.with(|c| {
            let sql = format!("INSERT INTO sessions ({SESSION_COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)");
            let suite = s.cipher_suite.map(i32::from);
            let r = c.execute(
                &sql,
                &[
                    &s.id,
                    &s.api_key,
                    &s.media_mode.as_str(),
                    &s.archive_mode.as_str(),
                    &s.location,
                    &suite,
                    &s.archive_name,
                    &s.archive_resolution,
                    &s.created_ms,
                ],
            );
            match r {
                Ok(_) => Ok(()),
                Err(e) if unique_violation(&e).is_some() => Err(StoreError::DuplicateId(s.id.clone())),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn session(&self, id: &str) -> Result<Option<Session>, StoreError> {
        let row =
            self.with(|c| Ok(c.query_opt(&format!("SELECT {SESSION_COLS} FROM sessions WHERE id = $1"), &[&id])?))?;
        let Some(r) = row else { return Ok(None) };
        let row = SessionRow {
            id: r.try_get(0)?,
            api_key: r.try_get(1)?,
            media_mode: r.try_get(2)?,
            archive_mode: r.try_get(3)?,
            location: r.try_get(4)?,
            cipher_suite: r.try_get::<_, Option<i32>>(5)?.map(i64::from),
            archive_name: r.try_get(6)?,
            archive_resolution: r.try_get(7)?,
            created_ms: r.try_get(8)?,
        };
        Session::try_from(row).map(Some)
    }

    fn session_count(&self) -> Result<u64, StoreError> {
        self.with(|c| Ok(c.query_one("SELECT COUNT(*) FROM sessions", &[])?.try_get::<_, i64>(0)? as u64))
    }

    fn delete_session(&self, id: &str) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.execute("DELETE FROM sessions WHERE id = $1", &[&id])? > 0))
    }
}
