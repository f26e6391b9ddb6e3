//! The Web SDK and demo app routes of `umbra serve`: static files from --web-dir, and the
//! demo-only token endpoint (off unless --demo).

mod common;

use common::*;

fn web_dir(root: &std::path::Path) -> std::path::PathBuf {
    let web = root.join("web");
    std::fs::create_dir_all(web.join("dist")).unwrap();
    std::fs::create_dir_all(web.join("demo")).unwrap();
    std::fs::write(web.join("dist/umbra.js"), "var OT = {};").unwrap();
    std::fs::write(web.join("dist/umbra-e2ee-worker.js"), "// worker").unwrap();
    std::fs::write(web.join("demo/index.html"), "<!doctype html><title>demo</title>").unwrap();
    std::fs::write(web.join("demo/style.css"), "body{}").unwrap();
    std::fs::write(web.join("secret.txt"), "outside dist").unwrap();
    web
}

fn token_req(addr: &str, body: &str) -> Resp {
    http(addr, "POST", "/demo/token", &[("Content-Type", "application/json")], body.as_bytes())
}

#[test]
fn sdk_and_demo_files_are_served_with_their_types_and_nothing_else() {
    let dir = tmpdir();
    let web = web_dir(dir.path());
    let server = Server::start(&dir.path().join("data"), &["--no-media", "--web-dir", web.to_str().unwrap()]);
    let r = http(&server.addr, "GET", "/sdk/umbra.js", &[], b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"var OT = {};");
    assert!(r.header("content-type").unwrap().starts_with("text/javascript"));
    assert_eq!(http(&server.addr, "GET", "/sdk/umbra-e2ee-worker.js", &[], b"").status, 200);
    let index = http(&server.addr, "GET", "/", &[], b"");
    assert_eq!(index.status, 200);
    assert!(index.header("content-type").unwrap().starts_with("text/html"));
    let css = http(&server.addr, "GET", "/demo/style.css", &[], b"");
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
    // Missing files, and anything that tries to leave the directory: JSON 404, code 5006.
    for path in ["/sdk/nope.js", "/sdk/..%2Fsecret.txt", "/sdk/.hidden", "/demo/..%2F..%2Fsecret.txt", "/sdk/%2e%2e"] {
        let r = http(&server.addr, "GET", path, &[], b"");
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), 5006, "{path}");
        assert!(!String::from_utf8_lossy(&r.body).contains("outside dist"));
    }
}

#[test]
fn a_missing_sdk_build_says_how_to_build_it() {
    let dir = tmpdir();
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let server = Server::start(&dir.path().join("data"), &["--no-media", "--web-dir", empty.to_str().unwrap()]);
    let r = http(&server.addr, "GET", "/sdk/umbra.js", &[], b"");
    assert_eq!(r.status, 404);
    assert!(r.json()["message"].as_str().unwrap().contains("npm run build"), "{}", r.json());
}

#[test]
fn demo_tokens_only_in_demo_mode() {
    let dir = tmpdir();
    let server = Server::start(&dir.path().join("data"), &["--no-media"]);
    let r = token_req(&server.addr, r#"{"room":"standup"}"#);
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), 5007);
}

#[test]
fn demo_rooms_map_to_encrypted_routed_sessions_with_working_tokens() {
    let dir = tmpdir();
    let server = Server::start(&dir.path().join("data"), &["--no-media", "--demo"]);
    let a = token_req(&server.addr, r#"{"room":"standup","name":"Ada"}"#);
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let a = a.json();
    let b = token_req(&server.addr, r#"{"room":"standup","name":"Bob"}"#).json();
    let c = token_req(&server.addr, r#"{"room":"other"}"#).json();
    let plain = token_req(&server.addr, r#"{"room":"standup","e2ee":false}"#).json();
    assert_eq!(a["sessionId"], b["sessionId"], "one session per room");
    assert_ne!(a["sessionId"], c["sessionId"]);
    assert_ne!(a["sessionId"], plain["sessionId"], "the unencrypted room is another session");
    assert_eq!(a["apiKey"], c["apiKey"]);
    assert_ne!(a["token"], b["token"]);
    // The token works on the signaling socket, and the session is end-to-end encrypted.
    let (_ws, welcome) = Ws::join(&server.addr, a["token"].as_str().unwrap());
    assert_eq!(welcome["session_id"], a["sessionId"], "{welcome}");
    assert_eq!(welcome["e2ee"], true, "{welcome}");
    assert_eq!(welcome["cipher_suite"], 6, "{welcome}");
    assert_eq!(welcome["media_mode"], "routed", "{welcome}");
    let (_ws2, pw) = Ws::join(&server.addr, plain["token"].as_str().unwrap());
    assert_eq!(pw["e2ee"], false, "{pw}");
    for bad in [r#"{"room":""}"#, r#"{}"#, &format!(r#"{{"room":"{}"}}"#, "x".repeat(65))] {
        let r = token_req(&server.addr, bad);
        assert_eq!(r.status, 400, "{bad}");
        assert_eq!(r.code(), 3001, "{bad}");
    }
}
