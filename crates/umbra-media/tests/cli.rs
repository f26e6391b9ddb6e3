//! `umbra-media publish` and `subscribe` as separate processes against a real server (run
//! in-process here, with its str0m router on loopback): the README's two-terminal demo.

mod support;

use std::process::Command;

use serde_json::Value;
use support::{SECRET, Server, bin, publish, server};
use umbra_server::model::Role;

/// Runs `subscribe --json` for `secs` and returns its last stats line.
fn subscribe(s: &Server, credentials: &[&str], secret: &str, secs: u64) -> Value {
    let out = Command::new(bin())
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
    let (publisher, session_id) = publish(&s, None, SECRET, 40, &[]);

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
            Command::new(bin()).args(args).env_remove("UMBRA_API_KEY").env_remove("UMBRA_API_SECRET").output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr.contains("--session-id") || stderr.contains("--api-key"), "{args:?}: {stderr}");
    }
}
