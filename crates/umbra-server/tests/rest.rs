//! The REST API against a real `umbra serve` process over real HTTP.

mod common;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

fn b64url(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

fn sign(claims: &Value, secret: &str) -> String {
    umbra_server::jwt::sign_hs256(claims, secret.as_bytes())
}

#[test]
fn session_create_covers_every_media_archive_e2ee_combination() {
    let dir = tmpdir();
    let with_addon = create_project(dir.path(), "with-addon", true);
    let without = create_project(dir.path(), "without-addon", false);
    let server = Server::start(dir.path(), &[]);

    // (project has add-on, p2p.preference, archiveMode, e2ee) -> (status, code when refused)
    let mut cases = vec![];
    for addon in [true, false] {
        for media in [None, Some("enabled"), Some("disabled")] {
            for archive in [None, Some("manual"), Some("always")] {
                for e2ee in [None, Some("false"), Some("true")] {
                    let routed = media == Some("disabled");
                    let always = archive == Some("always");
                    let expect: (u16, Option<u64>) = match (e2ee == Some("true"), addon) {
                        (true, false) => (403, Some(4001)),
                        (true, true) if !routed => (400, Some(4002)),
                        (true, true) if always => (400, Some(4003)),
                        (false, _) if always && !routed => (400, Some(3003)),
                        _ => (200, None),
                    };
                    cases.push((addon, media, archive, e2ee, expect));
                }
            }
        }
    }
    assert_eq!(cases.len(), 54);
    for (addon, media, archive, e2ee, (status, code)) in cases {
        let p = if addon { &with_addon } else { &without };
        let mut form = vec![];
        if let Some(m) = media {
            form.push(format!("p2p.preference={m}"));
        }
        if let Some(a) = archive {
            form.push(format!("archiveMode={a}"));
        }
        if let Some(e) = e2ee {
            form.push(format!("e2ee={e}"));
        }
        form.push("location=10.0.0.1".into());
        let r = create_session(&server.addr, p, &form.join("&"));
        let what = format!("addon={addon} media={media:?} archive={archive:?} e2ee={e2ee:?}");
        assert_eq!(r.status, status, "{what}: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("content-type"), Some("application/json"), "{what}");
        match code {
            Some(c) => {
                assert_eq!(r.code(), c, "{what}");
                let msg = r.json()["message"].as_str().unwrap().to_owned();
                match c {
                    4001 => assert!(msg.contains("add-on") && msg.contains("enabled"), "{msg}"),
                    4002 => assert!(msg.contains("routed"), "{msg}"),
                    4003 => assert!(msg.contains("archive"), "{msg}"),
                    _ => {}
                }
            }
            None => {
                let v = r.json();
                let s = &v.as_array().expect("a JSON array")[0];
                let id = s["session_id"].as_str().unwrap();
                assert!(id.starts_with("1_"), "{id}");
                let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&id[2..]).unwrap();
                let raw = String::from_utf8(raw).unwrap();
                let fields: Vec<&str> = raw.split('~').collect();
                assert_eq!(fields[1], p.key, "API key at field 1");
                assert_eq!(fields[2], "10.0.0.1");
                assert!(fields[3].parse::<i64>().unwrap() > 1_700_000_000_000);
                assert_eq!(s["project_id"], p.key.as_str());
                assert_eq!(s["partner_id"], p.key.as_str());
                assert!(s["create_dt"].as_str().unwrap().contains("UTC"));
                let want_e2ee = e2ee == Some("true");
                assert_eq!(s["e2ee"], want_e2ee, "{what}");
                assert_eq!(s["cipher_suite"], if want_e2ee { json!(6) } else { Value::Null }, "{what}");
                let mode = if media == Some("disabled") { "routed" } else { "relayed" };
                assert_eq!(s["media_mode"], mode, "{what}");
                assert_eq!(s["archive_mode"], archive.unwrap_or("manual"), "{what}");
            }
        }
    }
}

#[test]
fn session_create_rejects_bad_parameters_with_400() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let server = Server::start(dir.path(), &[]);
    let cases: &[(&str, u64, &str)] = &[
        ("p2p.preference=sometimes", 3001, "p2p.preference"),
        ("archiveMode=never", 3001, "archiveMode"),
        ("location=not-an-ip", 3001, "location"),
        ("e2ee=yes", 3001, "e2ee"),
        ("p2p.preference=disabled&e2ee=true&e2eeCipherSuite=99", 4004, "cipher suite"),
        ("p2p.preference=disabled&e2eeCipherSuite=6", 4004, "e2ee=true"),
        ("p2p.preference=disabled&archiveMode=always&archiveResolution=1x1", 3001, "archiveResolution"),
        ("p2p.preference=disabled&archiveName=x", 3001, "archiveMode=always"),
    ];
    for (form, code, needle) in cases {
        let r = create_session(&server.addr, &p, form);
        assert_eq!((r.status, r.code()), (400, *code), "{form}");
        assert!(r.json()["message"].as_str().unwrap().contains(needle), "{form}: {:?}", r.json());
    }
    // Another cipher suite may be chosen, and is recorded.
    let r = create_session(&server.addr, &p, "p2p.preference=disabled&e2ee=true&e2eeCipherSuite=7");
    assert_eq!(r.json()[0]["cipher_suite"], 7);
    // JSON bodies work too; other content types are refused clearly.
    let r = http(
        &server.addr,
        "POST",
        "/session/create",
        &[("X-OPENTOK-AUTH", &auth(&p)), ("Content-Type", "application/json")],
        br#"{"p2p.preference":"disabled","e2ee":true}"#,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["e2ee"], true);
    let r = http(
        &server.addr,
        "POST",
        "/session/create",
        &[("X-OPENTOK-AUTH", &auth(&p)), ("Content-Type", "text/xml")],
        b"<x/>",
    );
    assert_eq!((r.status, r.code()), (400, 3002));
    let r = http(
        &server.addr,
        "POST",
        "/session/create",
        &[("X-OPENTOK-AUTH", &auth(&p)), ("Content-Type", "application/json")],
        b"{",
    );
    assert_eq!((r.status, r.code()), (400, 3002));
}

#[test]
fn bad_auth_headers_are_each_refused_with_their_own_error() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let other = create_project(dir.path(), "other", true);
    let server = Server::start(dir.path(), &[]);
    let now = now();
    let good = |extra: Value| {
        let mut c = json!({"iss": p.key, "ist": "project", "iat": now, "exp": now + 180});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let body_of = |c: &Value| b64url(&c.to_string());
    let hdr = b64url(r#"{"alg":"HS256","typ":"JWT"}"#);
    let valid = sign(&good(json!({})), &p.secret);
    let mut tampered: Vec<String> = valid.split('.').map(str::to_owned).collect();
    tampered[1] = body_of(&good(json!({"exp": now + 200})));

    // (label, header value, code, text the message must contain)
    let table: Vec<(&str, Option<String>, u64, &str)> = vec![
        ("missing header", None, 1001, "missing X-OPENTOK-AUTH"),
        ("not a JWT", Some("hello".into()), 1002, "not a JWT"),
        ("bad base64", Some(format!("{hdr}.%%%.abc")), 1003, "base64url"),
        ("header not JSON", Some(format!("{}.{}.abc", b64url("nope"), body_of(&good(json!({}))))), 1004, "JSON"),
        ("alg none", Some(format!("{}.{}.", b64url(r#"{"alg":"none"}"#), body_of(&good(json!({}))))), 1005, "none"),
        ("no iss", Some(sign(&good(json!({"iss": null})), &p.secret)), 1006, "\"iss\""),
        ("iss not a string", Some(sign(&good(json!({"iss": {"k": 1}})), &p.secret)), 1007, "\"iss\""),
        ("ist account", Some(sign(&good(json!({"ist": "account"})), &p.secret)), 1008, "\"project\""),
        ("unknown project", Some(sign(&good(json!({"iss": "99999999"})), &p.secret)), 1009, "99999999"),
        ("wrong secret", Some(sign(&good(json!({})), &other.secret)), 1010, "signature"),
        ("expired", Some(sign(&good(json!({"iat": now - 1000, "exp": now - 600})), &p.secret)), 1011, "expired"),
        (
            "issued in the future",
            Some(sign(&good(json!({"iat": now + 600, "exp": now + 700})), &p.secret)),
            1012,
            "future",
        ),
        ("lives too long", Some(sign(&good(json!({"exp": now + 86_400})), &p.secret)), 1013, "too long"),
    ];
    let mut seen_codes = std::collections::HashSet::new();
    let mut seen_messages = std::collections::HashSet::new();
    for (label, header, code, needle) in &table {
        let r = post_form(&server.addr, "/session/create", header.as_deref(), "p2p.preference=disabled");
        assert_eq!(r.status, 403, "{label}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.code(), *code, "{label}: {:?}", r.json());
        let msg = r.json()["message"].as_str().unwrap().to_owned();
        assert!(msg.contains(needle), "{label}: {msg}");
        assert!(seen_codes.insert(*code), "{label}: code {code} reused");
        assert!(seen_messages.insert(msg), "{label}: message reused");
    }
    // More refusals that share a code with the table but say something different.
    let extra: Vec<(&str, String, u64, &str)> = vec![
        ("alg RS256", format!("{}.{}.abc", b64url(r#"{"alg":"RS256"}"#), body_of(&good(json!({})))), 1005, "RS256"),
        ("no exp", sign(&good(json!({"exp": null})), &p.secret), 1006, "\"exp\""),
        ("no ist", sign(&good(json!({"ist": null})), &p.secret), 1006, "\"ist\""),
        ("tampered payload", tampered.join("."), 1010, "signature"),
    ];
    for (label, header, code, needle) in &extra {
        let r = post_form(&server.addr, "/session/create", Some(header), "");
        assert_eq!((r.status, r.code()), (403, *code), "{label}");
        assert!(r.json()["message"].as_str().unwrap().contains(needle), "{label}");
    }
    // A valid header for one project on another project's URL.
    let sid = new_session(&server.addr, &p, "p2p.preference=disabled");
    let r = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", other.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!((r.status, r.code()), (403, 1014));
    assert!(seen_codes.insert(1014));
    assert!(seen_codes.len() >= 12);
    // And the valid one is accepted.
    assert_eq!(post_form(&server.addr, "/session/create", Some(&valid), "").status, 200);
}

#[test]
fn features_that_need_decoded_media_answer_409_on_e2ee_sessions_and_501_elsewhere() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let q = create_project(dir.path(), "q", true);
    let server = Server::start(dir.path(), &[]);
    let e2ee = new_session(&server.addr, &p, "p2p.preference=disabled&e2ee=true");
    let routed = new_session(&server.addr, &p, "p2p.preference=disabled");
    let relayed = new_session(&server.addr, &p, "");
    let foreign = new_session(&server.addr, &q, "p2p.preference=disabled&e2ee=true");
    let a = auth(&p);
    for feature in ["archive", "broadcast", "render", "connect", "dial", "captions"] {
        let path = format!("/v2/project/{}/{feature}", p.key);
        let r = post_json(&server.addr, &path, &a, &json!({"sessionId": e2ee, "name": "x"}));
        assert_eq!((r.status, r.code()), (409, 4009), "{feature}");
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.json()["message"].as_str().unwrap().contains("end-to-end encrypted"), "{feature}");
        for s in [&routed, &relayed] {
            let r = post_json(&server.addr, &path, &a, &json!({"sessionId": s}));
            assert_eq!((r.status, r.code()), (501, 6001), "{feature}");
            assert!(r.json()["message"].as_str().unwrap().contains("not available"), "{feature}");
        }
        let r = post_json(&server.addr, &path, &a, &json!({}));
        assert_eq!((r.status, r.code()), (400, 3001), "{feature} without sessionId");
        let r = post_json(&server.addr, &path, &a, &json!({"sessionId": "1_nope"}));
        assert_eq!((r.status, r.code()), (404, 5001), "{feature} unknown session");
        let r = post_json(&server.addr, &path, &a, &json!({"sessionId": foreign}));
        assert_eq!((r.status, r.code()), (404, 5001), "{feature} another project's session");
        let r = http(&server.addr, "POST", &path, &[("X-OPENTOK-AUTH", &a)], b"not json");
        assert_eq!((r.status, r.code()), (400, 3002), "{feature} bad body");
    }
}

#[test]
fn v2_session_endpoints_answer_with_json_errors_never_500() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, "");
    let a = auth(&p);
    let base = format!("/v2/project/{}/session/{sid}", p.key);
    let h = [("X-OPENTOK-AUTH", a.as_str()), ("Content-Type", "application/json")];

    let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, br#"{"type":"chat","data":"hi"}"#);
    assert_eq!(r.status, 204);
    let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, br#"{"type":"chat"}"#);
    assert_eq!((r.status, r.code()), (400, 3001));
    let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, br#"{"type":"bad type!","data":"x"}"#);
    assert_eq!((r.status, r.code()), (400, 3001));
    let big = json!({"data": "x".repeat(9000)}).to_string();
    let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, big.as_bytes());
    assert_eq!((r.status, r.code()), (400, 3001));
    let r = http(&server.addr, "POST", &format!("{base}/connection/nobody/signal"), &h, br#"{"data":"x"}"#);
    assert_eq!((r.status, r.code()), (404, 5002));
    let r = http(&server.addr, "DELETE", &format!("{base}/connection/nobody"), &h, b"");
    assert_eq!((r.status, r.code()), (404, 5002));
    let r = http(&server.addr, "GET", &format!("{base}/stream"), &h, b"");
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"count": 0, "items": []}));
    let r = http(&server.addr, "GET", &format!("{base}/stream/nostream"), &h, b"");
    assert_eq!((r.status, r.code()), (404, 5003));
    let r = http(&server.addr, "POST", &format!("{base}/stream/nostream/mute"), &h, b"");
    assert_eq!((r.status, r.code()), (404, 5003));
    let r = http(&server.addr, "POST", &format!("{base}/mute"), &h, br#"{"active":true,"excludedStreamIds":[]}"#);
    assert_eq!(r.status, 200);
    let r = http(&server.addr, "POST", &format!("{base}/mute"), &h, br#"{"excludedStreamIds":"x"}"#);
    assert_eq!((r.status, r.code()), (400, 3001));
    let r = http(&server.addr, "GET", &format!("/v2/project/{}/session/1_unknown/stream", p.key), &h, b"");
    assert_eq!((r.status, r.code()), (404, 5001));
    let r = http(&server.addr, "GET", "/no/such/thing", &h, b"");
    assert_eq!((r.status, r.code()), (404, 5004));
    let r = http(&server.addr, "GET", "/session/create", &h, b"");
    assert_eq!((r.status, r.code()), (405, 5005));
    // A malformed path segment and an oversized body are refused as JSON too.
    let r = http(&server.addr, "GET", &format!("/v2/project/{}/session/%FF%FE/stream", p.key), &h, b"");
    assert!((400..500).contains(&r.status) && r.json()["code"].is_u64(), "{}", r.status);
    let huge = vec![b'a'; 3 * 1024 * 1024];
    let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, &huge);
    assert_eq!(r.status, 413);
    assert!(r.json()["code"].is_u64());
    // Garbage of every sort gets a 4xx with a JSON body.
    for body in [&b"\xff\xfe"[..], b"[]", b"null", b"{\"data\": 5}"] {
        let r = http(&server.addr, "POST", &format!("{base}/signal"), &h, body);
        assert!((400..500).contains(&r.status), "{body:?} -> {}", r.status);
        assert!(r.json()["code"].is_u64());
    }
}

#[test]
fn projects_and_sessions_survive_a_restart() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let mut server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, "p2p.preference=disabled&e2ee=true&e2eeCipherSuite=7");
    let status = server.stop();
    assert!(status.success(), "graceful exit: {status:?}");
    assert!(server.log().contains("stopped"));

    let db = dir.path().join("umbra.sqlite3");
    assert!(db.exists());
    let store = umbra_server::store::SqliteStore::open(&db).unwrap();
    use umbra_server::store::Store;
    let s = store.session(&sid).unwrap().expect("session stored");
    assert_eq!(s.cipher_suite, Some(7));
    drop(store);

    let server = Server::start(dir.path(), &[]);
    // The old session still takes tokens and describes itself as before.
    let (_ws, welcome) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!(welcome["session_id"], sid.as_str());
    assert_eq!(welcome["e2ee"], true);
    assert_eq!(welcome["cipher_suite"], 7);
    assert_eq!(welcome["media_mode"], "routed");
    // And the project still authenticates.
    assert_eq!(create_session(&server.addr, &p, "").status, 200);
    let r = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.status, 200);
}

#[test]
fn cli_manages_projects_and_the_e2ee_addon() {
    let dir = tmpdir();
    let help = cli(dir.path(), &["--help"]);
    assert!(help.ok);
    for word in ["serve", "project", "token", "--data-dir"] {
        assert!(help.stdout.contains(word), "--help lacks {word}");
    }
    let serve_help = cli(dir.path(), &["serve", "--help"]);
    for word in ["--listen", "--config", "UMBRA_LISTEN", "--resume-window-secs"] {
        assert!(serve_help.stdout.contains(word), "serve --help lacks {word}");
    }
    let out = cli(dir.path(), &["project", "create", "--name", "demo"]);
    assert!(out.ok);
    assert!(out.stdout.contains("api_key:") && out.stdout.contains("api_secret:"), "{}", out.stdout);
    let dup = cli(dir.path(), &["project", "create", "--name", "demo"]);
    assert!(!dup.ok && dup.stderr.contains("already exists"), "{}", dup.stderr);
    let again = cli(dir.path(), &["project", "create", "--name", "demo", "--if-absent"]);
    assert!(again.ok);
    assert_eq!(again.stdout, out.stdout, "--if-absent prints the same project");
    let key = out.stdout.lines().find_map(|l| l.strip_prefix("api_key:")).unwrap().trim().to_owned();
    let secret = out.stdout.lines().find_map(|l| l.strip_prefix("api_secret:")).unwrap().trim().to_owned();
    assert_eq!(secret.len(), 40);
    let p = Project { key: key.clone(), secret };

    let server = Server::start(dir.path(), &[]);
    let e2ee_form = "p2p.preference=disabled&e2ee=true";
    assert_eq!(create_session(&server.addr, &p, e2ee_form).status, 403);
    assert!(cli(dir.path(), &["project", "e2ee", "enable", &key]).ok);
    // The running server sees the change without a restart.
    assert_eq!(create_session(&server.addr, &p, e2ee_form).status, 200);
    let list = cli(dir.path(), &["project", "list"]);
    assert!(list.stdout.contains(&key) && list.stdout.contains("enabled") && !list.stdout.contains(&p.secret));
    assert!(cli(dir.path(), &["project", "e2ee", "disable", "demo"]).ok);
    assert_eq!(create_session(&server.addr, &p, e2ee_form).status, 403);
    let missing = cli(dir.path(), &["project", "e2ee", "enable", "nope"]);
    assert!(!missing.ok && missing.stderr.contains("no project"));

    // `umbra token` makes client tokens in both formats that connect.
    let sid = new_session(&server.addr, &p, "");
    for format in ["jwt", "t1"] {
        let t = cli(
            dir.path(),
            &[
                "token",
                "--project",
                "demo",
                "--session-id",
                &sid,
                "--role",
                "moderator",
                "--data",
                "a b",
                "--format",
                format,
            ],
        );
        assert!(t.ok, "{}", t.stderr);
        let (_ws, w) = Ws::join(&server.addr, t.stdout.trim());
        assert_eq!((w["role"].as_str(), w["connection_data"].as_str()), (Some("moderator"), Some("a b")), "{format}");
    }
}

#[test]
fn health_and_metrics_report_live_state() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let server = Server::start(dir.path(), &[]);
    let r = http(&server.addr, "GET", "/healthz", &[], b"");
    assert_eq!((r.status, r.json()), (200, json!({"status": "ok"})));
    let sid = new_session(&server.addr, &p, "");
    let _ = post_form(&server.addr, "/session/create", None, "");
    let (_a, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let ack = b.request(json!({"type": "publish", "stream": {"name": "cam"}}));
    assert_eq!(ack["type"], "ack");
    let m = String::from_utf8(http(&server.addr, "GET", "/metrics", &[], b"").body).unwrap();
    for line in [
        "umbra_sessions_created_total 1",
        "umbra_sessions_live 1",
        "umbra_connections 2",
        "umbra_streams 1",
        "umbra_sessions_stored 1",
        "umbra_http_requests_total{route=\"/session/create\",status=\"200\"} 1",
        "umbra_http_requests_total{route=\"/session/create\",status=\"403\"} 1",
        "umbra_http_requests_total{route=\"/healthz\",status=\"200\"} 1",
    ] {
        assert!(m.lines().any(|l| l == line), "metrics lack {line:?}:\n{m}");
    }
}

/// Every route in docs/openapi.yaml exists on the server, and every route of the server is in
/// the document.
#[test]
fn openapi_document_matches_the_real_routes() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.yaml")).unwrap();
    let mut documented = std::collections::BTreeSet::new();
    let mut in_paths = false;
    let mut current: Option<String> = None;
    for line in doc.lines() {
        if line.starts_with("paths:") {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.trim().is_empty() {
            in_paths = false;
        }
        if !in_paths {
            continue;
        }
        if let Some(p) = line.strip_prefix("  /") {
            current = Some(format!("/{}", p.trim_end().trim_end_matches(':').trim_matches('\'').trim_matches('"')));
        } else if let Some(m) = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'))
            && ["get", "post", "put", "patch", "delete"].contains(&m)
        {
            documented.insert((m.to_uppercase(), current.clone().expect("method under a path")));
        }
    }
    let real: std::collections::BTreeSet<(String, String)> =
        umbra_server::api::ROUTES.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(documented, real, "docs/openapi.yaml and the server's routes differ");

    // And the server really answers each of them (not with the unknown-route error).
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let server = Server::start(dir.path(), &[]);
    for (method, path) in &real {
        let concrete = path.replace("{apiKey}", &p.key).replace('{', "x").replace('}', "");
        let r = http(&server.addr, method, &concrete, &[("X-OPENTOK-AUTH", &auth(&p))], b"");
        let code = serde_json::from_slice::<Value>(&r.body).ok().and_then(|v| v["code"].as_u64());
        assert!(r.status != 405 && code != Some(5004), "{method} {path} -> {}", r.status);
    }
}

#[test]
fn shutdown_closes_signaling_sockets_and_exits_cleanly() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let mut server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, "");
    let (mut ws, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let addr = server.addr.clone();
    let stopper = std::thread::spawn(move || server.stop());
    assert_eq!(ws.expect_close(), Some(1001));
    assert!(stopper.join().unwrap().success());
    assert!(std::net::TcpStream::connect(&addr).is_err(), "port still open after exit");
}

#[test]
fn config_file_sets_serve_options_and_flags_override_it() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let cfg = dir.path().join("umbra.toml");
    std::fs::write(&cfg, "log_format = \"json\"\nresume_window_secs = 7\nheartbeat_interval_secs = 3\n").unwrap();
    let cfg = cfg.to_str().unwrap();
    let server = Server::start(dir.path(), &["--config", cfg, "--heartbeat-interval-secs", "4"]);
    let sid = new_session(&server.addr, &p, "");
    let (_ws, w) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!(w["resume_window_ms"], 7000, "from the file");
    assert_eq!(w["heartbeat_interval_ms"], 4000, "the flag wins over the file");
    // Structured logs: one JSON object per line, with fields.
    let log = server.log();
    let lines: Vec<Value> =
        log.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"))).collect();
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "session created" && l["fields"]["session"] == sid.as_str()),
        "{log}"
    );

    // A bad config file is refused with a message naming it.
    std::fs::write(dir.path().join("bad.toml"), "listen = 5\n").unwrap();
    let out = cli(dir.path(), &["serve", "--config", dir.path().join("bad.toml").to_str().unwrap()]);
    assert!(!out.ok && out.stderr.contains("bad.toml"), "{}", out.stderr);
}
