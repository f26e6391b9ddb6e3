//! The store on both engines: the same behaviour checks run against SQLite (a real file) and
//! PostgreSQL (a real server of the test's own, tests/common/postgres.rs); then `umbra` itself
//! on PostgreSQL: two nodes sharing one database, a restart that keeps everything, and a
//! database restart under a running node.

mod common;

use common::postgres::Postgres;
use common::{Server, Ws, auth, cli, http, new_session, token};
use serde_json::Value;
use umbra_server::model::{ArchiveMode, MediaMode, Project, Session};
use umbra_server::store::{PostgresStore, SqliteStore, Store, StoreError};

fn project(key: &str, name: &str) -> Project {
    Project { api_key: key.into(), name: name.into(), secret: "s".repeat(40), e2ee_enabled: false, created_ms: 1 }
}

fn session(id: &str, key: &str, suite: Option<u16>) -> Session {
    Session {
        id: id.into(),
        api_key: key.into(),
        media_mode: MediaMode::Routed,
        archive_mode: ArchiveMode::Manual,
        location: Some("10.1.2.3".into()),
        cipher_suite: suite,
        archive_name: None,
        archive_resolution: Some("1280x720".into()),
        created_ms: 5,
    }
}

/// What every engine must do the same way.
fn conformance(st: &dyn Store) {
    st.insert_project(&project("11111111", "a")).unwrap();
    st.insert_project(&Project { created_ms: 2, ..project("33333333", "b") }).unwrap();
    assert!(matches!(st.insert_project(&project("22222222", "a")), Err(StoreError::DuplicateName(n)) if n == "a"));
    assert!(matches!(st.insert_project(&project("11111111", "c")), Err(StoreError::DuplicateId(k)) if k == "11111111"));
    assert!(st.set_e2ee_enabled("11111111", true).unwrap());
    assert!(!st.set_e2ee_enabled("99999999", true).unwrap());
    let a = st.project("11111111").unwrap().unwrap();
    assert!(a.e2ee_enabled);
    assert_eq!(st.project_by_name("a").unwrap(), Some(a.clone()));
    assert_eq!(st.project("99999999").unwrap(), None);
    assert_eq!(st.project_by_name("zz").unwrap(), None);
    let names: Vec<String> = st.projects().unwrap().into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["a", "b"], "ordered by creation");

    let s = session("1_x", "11111111", Some(6));
    st.insert_session(&s).unwrap();
    st.insert_session(&session("1_y", "11111111", None)).unwrap();
    assert!(matches!(st.insert_session(&s), Err(StoreError::DuplicateId(id)) if id == "1_x"));
    assert_eq!(st.session("1_x").unwrap(), Some(s));
    assert_eq!(st.session("1_y").unwrap().unwrap().cipher_suite, None);
    assert_eq!(st.session("nope").unwrap(), None);
    assert_eq!(st.session_count().unwrap(), 2);
    assert!(st.delete_session("1_y").unwrap());
    assert!(!st.delete_session("1_y").unwrap());
    assert_eq!(st.session_count().unwrap(), 1);
    // A session of no project is refused by the schema on both engines.
    assert!(st.insert_session(&session("1_z", "99999999", None)).is_err());
}

#[test]
fn sqlite_store_behaves_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    conformance(&SqliteStore::open_dir(dir.path()).unwrap());
    // Reopened, everything is still there.
    let st = SqliteStore::open_dir(dir.path()).unwrap();
    assert_eq!(st.session_count().unwrap(), 1);
    assert_eq!(st.schema_version().unwrap(), 1);
}

#[test]
fn postgres_store_behaves_as_specified_and_survives_a_database_restart() {
    let pg = Postgres::start();
    let url = pg.new_database();
    let st = PostgresStore::connect(&url).unwrap();
    conformance(&st);
    assert_eq!(st.schema_version().unwrap(), 1);
    // A second store on the same database (another node) migrates nothing and sees the data.
    let other = PostgresStore::connect(&url).unwrap();
    assert_eq!(other.session_count().unwrap(), 1);

    pg.ctl("restart");
    // The call that finds the connection broken may fail; the next one reconnects.
    let first = st.session_count();
    let again = st.session_count().unwrap();
    assert_eq!(again, 1, "after the restart (first call: {first:?})");
    assert_eq!(st.project_by_name("b").unwrap().unwrap().api_key, "33333333");
}

#[test]
fn postgres_schema_newer_than_this_umbra_is_refused() {
    let pg = Postgres::start();
    let url = pg.new_database();
    drop(PostgresStore::connect(&url).unwrap());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    c.execute("INSERT INTO umbra_schema (version) VALUES (99)", &[]).unwrap();
    let e = PostgresStore::connect(&url).err().unwrap();
    assert!(matches!(e, StoreError::SchemaTooNew { found: 99, known: 1 }), "{e}");
}

#[test]
fn bad_database_urls_are_clear_errors_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["--database", "mysql://root:hunter2@db/x", "project", "list"]);
    assert!(!out.ok);
    assert!(out.stderr.contains("expected postgres://"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
    // Nothing listening: a connection error, not a hang or a panic.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://umbra:hunter2@127.0.0.1:{port}/umbra?sslmode=disable&connect_timeout=5");
    let out = cli(dir.path(), &["--database", &url, "project", "list"]);
    assert!(!out.ok);
    assert!(out.stderr.contains("PostgreSQL error"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2"), "{}", out.stderr);
}

#[test]
fn two_nodes_on_one_postgres_share_projects_and_sessions_across_restarts() {
    let pg = Postgres::start();
    let url = pg.new_database();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Both nodes start at once on an empty database: the migration lock lets one create the
    // schema and the other find it.
    let db = ["--database", url.as_str(), "--no-media"];
    let mut a = Server::start(dir_a.path(), &db);
    let mut b = Server::start(dir_b.path(), &db);

    let out =
        cli(dir_a.path(), &["--database", &url, "project", "create", "--name", "shared", "--e2ee", "--output", "json"]);
    assert!(out.ok, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let p = common::Project {
        key: v["api_key"].as_str().unwrap().into(),
        secret: v["api_secret"].as_str().unwrap().into(),
    };
    assert!(!dir_a.path().join("umbra.sqlite3").exists(), "no SQLite file when the store is PostgreSQL");

    // A session made on node A is known to node B: a client joins it there.
    let sid = new_session(&a.addr, &p, "e2ee=true&p2p.preference=disabled");
    let (_ws, welcome) = Ws::join(&b.addr, &token(&p, &sid, "publisher", None));
    assert_eq!((welcome["e2ee"].clone(), welcome["cipher_suite"].clone()), (true.into(), 6.into()), "{welcome}");
    // The project listing of either node's CLI is the same database.
    let listed = cli(dir_b.path(), &["--database", &url, "project", "list", "--output", "json"]);
    assert!(listed.stdout.contains("shared"), "{}", listed.stdout);

    // Both nodes stop and start again: nothing was kept in them.
    a.stop();
    b.stop();
    let b = Server::start(dir_b.path(), &db);
    let (_ws, welcome) = Ws::join(&b.addr, &token(&p, &sid, "subscriber", None));
    assert_eq!(welcome["type"], "welcome");
    let r = http(
        &b.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
}
