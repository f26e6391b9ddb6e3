//! `umbra-media publish` and `subscribe` as separate processes against a real server (run
//! in-process here, with its str0m router on loopback): the README's two-terminal demo.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use umbra_server::model::{Project, Role};
use umbra_server::router_host::{HostedRouter, MediaOptions};
use umbra_server::store::{SqliteStore, Store};

const BIN: &str = env!("CARGO_BIN_EXE_umbra-media");
const SECRET: &str = "correct horse battery staple";

struct Server {
    url: String,
    project: Project,
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

fn server() -> Server {
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

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `subscribe --json` for `secs` and returns its last stats line.
fn subscribe(s: &Server, credentials: &[&str], secret: &str, secs: u64) -> Value {
    let out = Command::new(BIN)
        .args(["subscribe", "--url", &s.url, "--api-key", &s.project.api_key])
        .args(credentials)
        .args(["--secret", secret, "--json", "--duration", &secs.to_string()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "subscribe failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let last = stdout.lines().rfind(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no stats: {stdout}"));
    serde_json::from_str(last).unwrap()
}

#[test]
fn publish_makes_an_encrypted_session_that_subscribers_decode_only_with_the_secret() {
    let s = server();
    let mut publisher = Killed(
        Command::new(BIN)
            .args(["publish", "--url", &s.url, "--api-key", &s.project.api_key, "--api-secret", &s.project.secret])
            .args(["--secret", SECRET, "--size", "320x240", "--duration", "40"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(publisher.0.stdout.take().unwrap()).lines();
    let connected = lines.next().expect("a first line").unwrap();
    let session_id = connected
        .strip_prefix("connected to session ")
        .and_then(|rest| rest.strip_suffix(" (end-to-end encrypted)"))
        .unwrap_or_else(|| panic!("unexpected first line {connected:?}"))
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));

    // The project's credentials (what the README shows) and an app server's token both work.
    let right = subscribe(&s, &["--api-secret", &s.project.secret, "--session-id", &session_id], SECRET, 6);
    let expires = umbra_server::clock::now_secs() + 600;
    let token = umbra_server::token::sign_jwt(
        &s.project.api_key,
        &s.project.secret,
        &session_id,
        Role::Subscriber,
        expires,
        None,
    );
    let wrong = subscribe(&s, &["--session-id", &session_id, "--token", &token], "not the publisher's secret", 4);
    drop(publisher);
    assert_eq!(right["encryption"], "encrypted", "{right}");
    assert!(right["frames_decoded"].as_u64().unwrap() >= 60, "{right}");
    assert!(right["audio_frames_decoded"].as_u64().unwrap() >= 100, "{right}");
    assert_eq!(wrong["encryption"], "SECRET MISMATCH", "{wrong}");
    assert_eq!(wrong["frames_decoded"], 0, "{wrong}");
}

#[test]
fn missing_credentials_are_a_usage_error_that_says_what_to_give() {
    for args in [
        &["subscribe", "--api-key", "12345678"][..],
        &["subscribe", "--api-key", "12345678", "--api-secret", "x"][..],
        &["publish", "--api-secret", "x"][..],
    ] {
        let out =
            Command::new(BIN).args(args).env_remove("UMBRA_API_KEY").env_remove("UMBRA_API_SECRET").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("--session-id") || stderr.contains("--api-key"), "{args:?}: {stderr}");
    }
}
