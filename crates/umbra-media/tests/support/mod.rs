//! What the CLI's tests share: a real server run in-process (its str0m router on loopback), and
//! child processes that are killed when the test ends, however it ends.

#![allow(dead_code)] // each test binary uses part of it

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use umbra_server::model::Project;
use umbra_server::router_host::{HostedRouter, MediaOptions};
use umbra_server::store::{SqliteStore, Store};

/// The `umbra-media` binary under test: this package's, or `UMBRA_MEDIA_BIN` (a copy, when
/// other checkouts rebuild the shared target directory while the tests run).
pub fn bin() -> String {
    std::env::var("UMBRA_MEDIA_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_umbra-media").to_owned())
}
pub const SECRET: &str = "correct horse battery staple";

pub struct Server {
    pub url: String,
    pub project: Project,
    runtime: Option<tokio::runtime::Runtime>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

pub fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open_dir(dir.path()).unwrap();
    let project = Project {
        api_key: umbra_server::ids::new_api_key(),
        name: "demo".into(),
        secret: umbra_server::ids::new_secret(),
        e2ee_enabled: true,
        created_ms: 0,
    };
    store.insert_project(&project).unwrap();
    let router = HostedRouter::start(&MediaOptions { bind: vec!["127.0.0.1:0".parse().unwrap()], advertise: vec![] });
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let opts = umbra_server::server::ServeOptions {
        listen: addr.parse().unwrap(),
        data_dir: dir.path().to_owned(),
        clock_skew_secs: 30,
        shutdown_grace: Duration::from_secs(1),
        hub: Default::default(),
        cluster: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.spawn(umbra_server::server::serve(opts, Arc::new(store), Arc::new(router.unwrap())));
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { url: format!("http://{addr}"), project, runtime: Some(runtime), _dir: dir }
}

pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `umbra-media publish` of the test pattern (320x240) in `session` (or a new e2ee
/// session) and returns it with the session id it joined.
pub fn publish(s: &Server, session: Option<&str>, secret: &str, secs: u64, extra: &[&str]) -> (Killed, String) {
    let mut cmd = Command::new(bin());
    cmd.args(["publish", "--url", &s.url, "--api-key", &s.project.api_key, "--api-secret", &s.project.secret])
        .args(["--secret", secret, "--size", "320x240", "--duration", &secs.to_string()])
        .args(extra)
        .stdout(Stdio::piped());
    if let Some(id) = session {
        cmd.args(["--session-id", id]);
    }
    let mut child = Killed(cmd.spawn().unwrap());
    let mut lines = BufReader::new(child.0.stdout.take().unwrap()).lines();
    let connected = lines.next().expect("a first line").unwrap();
    let session_id = connected
        .strip_prefix("connected to session ")
        .and_then(|rest| rest.strip_suffix(" (end-to-end encrypted)"))
        .unwrap_or_else(|| panic!("unexpected first line {connected:?}"))
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    (child, session_id)
}
