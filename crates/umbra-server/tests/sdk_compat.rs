//! The official OpenTok server SDKs (PyPI `opentok` 3.x, npm `opentok` 2.x), unchanged and
//! pointed at a real `umbra serve`, create an e2ee session and generate JWT and T1 tokens; those
//! tokens then connect over signaling.
//!
//! The SDKs are installed by scripts/test.d/20-server-sdk-compat.sh, which runs these tests with
//! `--ignored` and tells them where the SDKs are (UMBRA_SDK_PYTHON, UMBRA_SDK_NODE_DIR).

mod common;

use std::process::Command;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

struct Sdk {
    program: String,
    script: std::path::PathBuf,
    cwd: std::path::PathBuf,
}

fn run_sdk(sdk: &Sdk, args: &[&str], server: &Server) -> Value {
    let (program, script, cwd) = (&sdk.program, &sdk.script, &sdk.cwd);
    let out = Command::new(program)
        .arg(script)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{} failed:\n{}\nserver log:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("bad output ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn check(sdk: &Sdk, p: &Project, q: &Project, server: &Server, who: &str) -> Value {
    let url = server.url();
    let out = run_sdk(sdk, &[&url, &p.key, &p.secret, &q.key, &q.secret], server);
    let sid = out["session_id"].as_str().unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&sid[2..]).unwrap();
    assert_eq!(String::from_utf8(raw).unwrap().split('~').nth(1), Some(p.key.as_str()));
    assert!(out["archive_error"].as_str().unwrap().contains("end-to-end encrypted"), "{who}: {}", out["archive_error"]);
    assert!(out["no_addon_error"].is_string(), "{who}: e2ee without the add-on must fail");
    assert!(out["bad_secret_error"].is_string(), "{who}: a wrong secret must fail");
    assert!(out["relayed_session_id"].as_str().unwrap().starts_with("1_"));

    // The tokens the SDK made connect, with the role and data the SDK put in them.
    let (mut publisher, w) = Ws::join(&server.addr, out["jwt_publisher"].as_str().unwrap());
    let publisher_id = w["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(
        (w["session_id"].as_str(), w["e2ee"].clone(), w["cipher_suite"].clone()),
        (Some(sid), json!(true), json!(6)),
        "{who}"
    );
    assert_eq!(
        (w["role"].as_str(), w["connection_data"].as_str(), w["media_mode"].as_str()),
        (Some("publisher"), Some(format!("{who} jwt").as_str()), Some("routed"))
    );
    let t1 = out["t1_moderator"].as_str().unwrap();
    assert!(t1.starts_with("T1=="));
    let (mut moderator, w) = Ws::join(&server.addr, t1);
    assert_eq!(
        (w["role"].as_str(), w["connection_data"].as_str()),
        (Some("moderator"), Some(format!("{who} t1 with spaces").as_str())),
        "{who}"
    );
    let (mut subscriber, w) = Ws::join(&server.addr, out["jwt_subscriber"].as_str().unwrap());
    assert_eq!(w["role"], "subscriber");
    let sub_id = w["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(w["connections"].as_array().unwrap().len(), 2, "{who}: sees the two earlier connections");
    publisher.expect("connection_created");
    publisher.expect("connection_created");

    // The E2EE and role rules hold for SDK-made tokens too.
    let e = publisher.request(json!({"type": "publish", "stream": {"name": "plain"}, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "e2ee_required", "{who}");
    assert_eq!(
        subscriber.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}, "sdp_offer": "v=0"}))["code"],
        "role_forbidden"
    );
    assert_eq!(moderator.request(json!({"type": "signal", "data": "hi"}))["type"], "ack");
    assert_eq!(subscriber.expect("signal")["data"], "hi");

    // The SDK's REST calls reach a connected client: a signal to it, then a forced disconnect.
    let acted = run_sdk(sdk, &["act", &url, &p.key, &p.secret, sid, &sub_id], server);
    assert_eq!(acted["ok"], true);
    let s = subscriber.expect("signal");
    assert_eq!((s["data"].as_str(), s["from"].clone()), (Some("to you"), Value::Null), "{who}");
    subscriber.expect("forced_disconnect");
    assert_eq!(subscriber.expect_close(), Some(4001));
    let gone = moderator.expect("connection_destroyed");
    assert_eq!(
        (gone["connection"]["connection_id"].as_str(), gone["reason"].as_str()),
        (Some(sub_id.as_str()), Some("forceDisconnected"))
    );

    // And a moderator holding an SDK-made T1 token can force a disconnect over signaling.
    let pub_id = publisher_id;
    assert_eq!(moderator.request(json!({"type": "force_disconnect", "connection_id": pub_id}))["type"], "ack");
    publisher.expect("forced_disconnect");
    assert_eq!(publisher.expect_close(), Some(4001));
    out
}

fn setup() -> (tempfile::TempDir, Server, Project, Project) {
    let dir = tmpdir();
    let p = create_project(dir.path(), "sdk", true);
    let q = create_project(dir.path(), "no-addon", false);
    let server = Server::start(dir.path(), &[]);
    (dir, server, p, q)
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run scripts/test.d/20-server-sdk-compat.sh"))
}

#[test]
#[ignore = "needs the Python SDK: scripts/test.d/20-server-sdk-compat.sh runs it"]
fn python_opentok_sdk_creates_e2ee_sessions_and_tokens_that_connect() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/python");
    let sdk = Sdk { program: env("UMBRA_SDK_PYTHON"), script: here.join("compat.py"), cwd: here };
    let (_d, server, p, q) = setup();
    let out = check(&sdk, &p, &q, &server, "py");
    assert!(out["sdk_version"].as_str().unwrap().starts_with("3."), "{}", out["sdk_version"]);
    assert_eq!(out["streams_count"], 0);
}

#[test]
#[ignore = "needs the Node SDK: scripts/test.d/20-server-sdk-compat.sh runs it"]
fn node_opentok_sdk_creates_e2ee_sessions_and_tokens_that_connect() {
    let node_dir = std::path::PathBuf::from(env("UMBRA_SDK_NODE_DIR"));
    let sdk = Sdk { program: "node".into(), script: node_dir.join("compat.js"), cwd: node_dir };
    let (_d, server, p, q) = setup();
    let out = check(&sdk, &p, &q, &server, "node");
    assert!(out["sdk_version"].as_str().unwrap().starts_with("2."), "{}", out["sdk_version"]);
}
