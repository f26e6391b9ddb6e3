//! Signaling with real WebSocket clients against a real `umbra serve` process.

mod common;

use std::collections::BTreeSet;

use base64::Engine;
use common::*;
use serde_json::{Value, json};

fn setup(form: &str) -> (tempfile::TempDir, Server, Project, String) {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, form);
    (dir, server, p, sid)
}

#[test]
fn two_clients_see_each_others_connections_streams_signals_and_sdp() {
    let (_d, server, p, sid) = setup("");
    let (mut a, wa) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("alice")));
    assert_eq!(wa["v"], 1);
    assert_eq!(wa["session_id"], sid.as_str());
    assert_eq!(wa["media_mode"], "relayed");
    assert_eq!(wa["e2ee"], false);
    assert_eq!(wa["connections"], json!([]));
    assert_eq!(wa["role"], "publisher");
    let a_id = wa["connection_id"].as_str().unwrap().to_owned();

    let (mut b, wb) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("bob")));
    let b_id = wb["connection_id"].as_str().unwrap().to_owned();
    assert_eq!(wb["connections"][0]["connection_id"], a_id.as_str());
    assert_eq!(wb["connections"][0]["data"], "alice");
    let ev = a.expect("connection_created");
    assert_eq!(ev["connection"]["connection_id"], b_id.as_str());
    assert_eq!(ev["connection"]["data"], "bob");

    // A publishes; B sees the stream; a third client sees it in its welcome.
    let ack =
        a.request(json!({"type": "publish", "stream": {"name": "cam", "has_audio": true, "video_type": "camera"}}));
    assert_eq!(ack["type"], "ack", "{ack}");
    let stream_id = ack["stream_id"].as_str().unwrap().to_owned();
    let ev = b.expect("stream_created");
    assert_eq!(ev["stream"]["stream_id"], stream_id.as_str());
    assert_eq!(ev["stream"]["connection_id"], a_id.as_str());
    assert_eq!(ev["stream"]["name"], "cam");
    let (c, wc) = Ws::join(&server.addr, &token(&p, &sid, "subscriber", None));
    assert_eq!(wc["streams"][0]["stream_id"], stream_id.as_str());
    assert_eq!(wc["connections"].as_array().unwrap().len(), 2);
    drop(c);

    // REST sees the stream too.
    let r = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream/{stream_id}", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["videoType"], "camera");

    // B subscribes with an offer; A receives it, answers; ICE goes both ways.
    let ack = b.request(json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": "v=0 offer-from-bob"}));
    assert_eq!(ack["type"], "ack", "{ack}");
    let sub = ack["subscription_id"].as_str().unwrap().to_owned();
    let ev = a.expect("subscribe_offer");
    assert_eq!(
        (ev["subscription_id"].as_str(), ev["sdp_offer"].as_str()),
        (Some(sub.as_str()), Some("v=0 offer-from-bob"))
    );
    assert_eq!(ev["subscriber_connection_id"], b_id.as_str());
    assert_eq!(
        a.request(json!({"type": "answer", "subscription_id": sub, "sdp_answer": "v=0 answer-from-alice"}))["type"],
        "ack"
    );
    assert_eq!(b.expect("answer")["sdp_answer"], "v=0 answer-from-alice");
    let cand = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    assert_eq!(b.request(json!({"type": "ice", "subscription_id": sub, "candidate": cand}))["type"], "ack");
    let ev = a.expect("ice");
    assert_eq!((ev["from"].as_str(), &ev["candidate"]), (Some("subscriber"), &cand));
    assert_eq!(a.request(json!({"type": "ice", "subscription_id": sub, "candidate": cand}))["type"], "ack");
    assert_eq!(b.expect("ice")["from"], "publisher");
    // A client that is not part of a subscription cannot inject into it.
    let (mut m, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!(
        m.request(json!({"type": "ice", "subscription_id": sub, "candidate": cand}))["code"],
        "unknown_subscription"
    );
    assert_eq!(
        m.request(json!({"type": "answer", "subscription_id": sub, "sdp_answer": "x"}))["code"],
        "unknown_subscription"
    );
    assert_eq!(m.request(json!({"type": "unpublish", "stream_id": stream_id}))["code"], "not_owner");
    m.send(&json!({"type": "leave"}));
    assert_eq!(m.expect_close(), Some(1000));
    let _ = a.expect("connection_destroyed");
    let _ = b.expect("connection_destroyed");

    // Signals: session-wide from a client, to one connection, and from the REST API.
    assert_eq!(b.request(json!({"type": "signal", "signal_type": "chat", "data": "hello all"}))["type"], "ack");
    for ws in [&mut a, &mut b] {
        let s = ws.expect("signal");
        assert_eq!(
            (s["from"].as_str(), s["signal_type"].as_str(), s["data"].as_str()),
            (Some(b_id.as_str()), Some("chat"), Some("hello all"))
        );
    }
    assert_eq!(b.request(json!({"type": "signal", "to": a_id, "data": "psst"}))["type"], "ack");
    assert_eq!(a.expect("signal")["data"], "psst");
    let r = post_json(
        &server.addr,
        &format!("/v2/project/{}/session/{sid}/connection/{b_id}/signal", p.key),
        &auth(&p),
        &json!({"type": "srv", "data": "to bob"}),
    );
    assert_eq!(r.status, 204);
    let s = b.expect("signal");
    assert_eq!((s["from"].clone(), s["data"].as_str()), (Value::Null, Some("to bob")));
    let r = post_json(
        &server.addr,
        &format!("/v2/project/{}/session/{sid}/signal", p.key),
        &auth(&p),
        &json!({"data": "everyone"}),
    );
    assert_eq!(r.status, 204);
    assert_eq!(a.expect("signal")["data"], "everyone");
    assert_eq!(b.expect("signal")["data"], "everyone");
    assert_eq!(b.request(json!({"type": "signal", "signal_type": "no spaces", "data": "x"}))["code"], "bad_request");

    // Stream property change; REST mute reaches the publisher.
    let ack = a.request(
        json!({"type": "set_stream_property", "stream_id": stream_id, "property": "has_video", "value": false}),
    );
    assert_eq!(ack["type"], "ack", "{ack}");
    let ev = b.expect("stream_property_changed");
    assert_eq!(
        (ev["property"].as_str(), &ev["old_value"], &ev["new_value"]),
        (Some("has_video"), &json!(true), &json!(false))
    );
    let r = http(
        &server.addr,
        "POST",
        &format!("/v2/project/{}/session/{sid}/stream/{stream_id}/mute", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.status, 200);
    assert_eq!(a.expect("mute_forced")["stream_id"], stream_id.as_str());

    // Unpublish ends B's subscription and the stream; leaving ends the connection.
    assert_eq!(a.request(json!({"type": "unpublish", "stream_id": stream_id}))["type"], "ack");
    assert_eq!(b.expect("subscription_ended")["subscription_id"], sub.as_str());
    let ev = b.expect("stream_destroyed");
    assert_eq!(
        (ev["stream"]["stream_id"].as_str(), ev["reason"].as_str()),
        (Some(stream_id.as_str()), Some("unpublished"))
    );
    b.send(&json!({"type": "leave"}));
    assert_eq!(b.expect_close(), Some(1000));
    let ev = a.expect("connection_destroyed");
    assert_eq!(
        (ev["connection"]["connection_id"].as_str(), ev["reason"].as_str()),
        (Some(b_id.as_str()), Some("clientDisconnected"))
    );
    // Heartbeat.
    assert_eq!(a.request(json!({"type": "ping"}))["type"], "pong");
}

#[test]
fn roles_are_enforced() {
    let (_d, server, p, sid) = setup("");
    let (mut publisher, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let (mut subscriber, _) = Ws::join(&server.addr, &token(&p, &sid, "subscriber", None));
    let (mut only, _) = Ws::join(&server.addr, &token(&p, &sid, "publisheronly", None));
    let (mut moderator, wm) = Ws::join(&server.addr, &token(&p, &sid, "moderator", None));
    assert_eq!(wm["role"], "moderator");

    let e = subscriber.request(json!({"type": "publish", "stream": {}}));
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("role_forbidden")));
    assert!(e["message"].as_str().unwrap().contains("subscriber cannot publish"));

    let ack = only.request(json!({"type": "publish", "stream": {}}));
    assert_eq!(ack["type"], "ack", "publisheronly may publish");
    let stream_id = ack["stream_id"].as_str().unwrap().to_owned();
    let e = only.request(json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "role_forbidden");
    assert!(e["message"].as_str().unwrap().contains("publisheronly cannot subscribe"));
    let e = only.request(json!({"type": "signal", "data": "x"}));
    assert_eq!(e["code"], "role_forbidden");

    let ack = subscriber.request(json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": "v=0"}));
    assert_eq!(ack["type"], "ack", "subscriber may subscribe");
    assert_eq!(subscriber.request(json!({"type": "signal", "data": "x"}))["type"], "ack");

    let target = publisher.expect("connection_created")["connection"]["connection_id"].as_str().unwrap().to_owned();
    let e = publisher.request(json!({"type": "force_disconnect", "connection_id": target}));
    assert_eq!(e["code"], "role_forbidden");
    assert!(e["message"].as_str().unwrap().contains("only a moderator"));

    // The moderator disconnects the subscriber: it is told, its socket ends, others see why.
    let ack = moderator.request(json!({"type": "force_disconnect", "connection_id": target}));
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(subscriber.expect("forced_disconnect")["type"], "forced_disconnect");
    assert_eq!(subscriber.expect_close(), Some(4001));
    let ev = moderator.expect("connection_destroyed");
    assert_eq!(
        (ev["connection"]["connection_id"].as_str(), ev["reason"].as_str()),
        (Some(target.as_str()), Some("forceDisconnected"))
    );
    assert_eq!(only.expect("subscription_ended")["stream_id"], stream_id.as_str());
    let e = moderator.request(json!({"type": "force_disconnect", "connection_id": target}));
    assert_eq!(e["code"], "unknown_connection");
}

#[test]
fn rest_force_disconnect_ends_the_socket() {
    let (_d, server, p, sid) = setup("");
    let (mut a, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let (mut b, wb) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let b_id = wb["connection_id"].as_str().unwrap();
    assert_eq!(b.request(json!({"type": "publish", "stream": {"name": "b"}}))["type"], "ack");
    let r = http(
        &server.addr,
        "DELETE",
        &format!("/v2/project/{}/session/{sid}/connection/{b_id}", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.status, 204);
    b.expect("forced_disconnect");
    assert_eq!(b.expect_close(), Some(4001));
    assert_eq!(a.expect("stream_destroyed")["reason"], "forceDisconnected");
    assert_eq!(a.expect("connection_destroyed")["reason"], "forceDisconnected");
    let r = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.json()["count"], 0);
}

#[test]
fn without_a_media_router_routed_publishes_are_refused_not_faked() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "nomedia", true);
    let server = Server::start(dir.path(), &["--no-media"]);
    let sid = new_session(&server.addr, &p, "p2p.preference=disabled&e2ee=true");
    let (mut a, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let e = a.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "media_router_unavailable", "{e}");
    assert!(e.get("sdp_answer").is_none());
}

#[test]
fn e2ee_session_refuses_a_publish_that_does_not_declare_encryption() {
    let (_d, server, p, sid) = setup("p2p.preference=disabled&e2ee=true");
    let (mut a, w) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!(
        (w["e2ee"].clone(), w["cipher_suite"].clone(), w["media_mode"].clone()),
        (json!(true), json!(6), json!("routed"))
    );

    let e = a.request(json!({"type": "publish", "stream": {"name": "plain"}, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "e2ee_required", "{e}");
    assert!(e["message"].as_str().unwrap().contains("client does not support end-to-end encryption"));
    let e = a.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 1}}, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "e2ee_cipher_suite_mismatch");
    // A declared publish passes the gate and reaches the media router, which refuses an offer
    // that is not SDP: a clear error, never an invented answer.
    let e = a.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}, "sdp_offer": "v=0"}));
    assert_eq!(e["code"], "media_bad_sdp", "{e}");
    assert!(e.get("sdp_answer").is_none());
    let e = a.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}}));
    assert_eq!(e["code"], "bad_request");
    assert!(e["message"].as_str().unwrap().contains("sdp_offer"));
    let r = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(r.json()["count"], 0, "no refused publish left a stream behind");

    // In a session without E2EE, declaring it is refused too (subscribers would have no key).
    let plain = new_session(&server.addr, &p, "");
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &plain, "publisher", None));
    assert_eq!(
        b.request(json!({"type": "publish", "stream": {"e2ee": {"cipher_suite": 6}}}))["code"],
        "e2ee_not_enabled"
    );
    assert_eq!(b.request(json!({"type": "publish", "stream": {}, "sdp_offer": "v=0"}))["code"], "bad_request");
}

#[test]
fn bad_tokens_are_each_refused_with_their_own_error() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", true);
    let q = create_project(dir.path(), "q", true);
    let server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, "p2p.preference=disabled&e2ee=true");
    let sid2 = new_session(&server.addr, &p, "");
    let q_sid = new_session(&server.addr, &q, "");
    let now = now();
    let claims = |extra: Value| {
        let mut c = json!({"iss": p.key, "ist": "project", "iat": now, "exp": now + 600, "scope": "session.connect", "session_id": sid, "role": "publisher"});
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let jwt = |extra: Value, secret: &str| umbra_server::jwt::sign_hs256(&claims(extra), secret.as_bytes());
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let cases: Vec<(&str, String, Option<&str>, &str)> = vec![
        ("empty", String::new(), None, "token_missing"),
        ("unknown format", "hello".into(), None, "token_unknown_format"),
        ("T1 not base64", "T1==!!!!".into(), None, "token_malformed"),
        ("JWT bad payload", format!("{}.%%%.x", b64(r#"{"alg":"HS256"}"#)), None, "token_malformed"),
        (
            "alg none",
            format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(&claims(json!({})).to_string())),
            None,
            "token_unsupported_algorithm",
        ),
        ("unknown project", jwt(json!({"iss": "99999999"}), &p.secret), None, "token_unknown_project"),
        ("forged", jwt(json!({}), "0123456789abcdef0123456789abcdef01234567"), None, "token_forged"),
        ("expired", jwt(json!({"exp": now - 3600}), &p.secret), None, "token_expired"),
        ("no expiry", jwt(json!({"exp": null}), &p.secret), None, "token_missing_expiry"),
        ("wrong scope", jwt(json!({"scope": "archive.read"}), &p.secret), None, "token_wrong_scope"),
        ("bad role", jwt(json!({"role": "admin"}), &p.secret), None, "token_invalid_role"),
        ("no session", jwt(json!({"session_id": null}), &p.secret), None, "token_missing_session"),
        ("wrong session", jwt(json!({}), &p.secret), Some(sid2.as_str()), "token_wrong_session"),
        ("unknown session", jwt(json!({"session_id": "1_nosuchsession"}), &p.secret), None, "unknown_session"),
        ("wrong project", jwt(json!({"session_id": q_sid}), &p.secret), None, "token_wrong_project"),
        (
            "data too long",
            jwt(json!({"connection_data": "x".repeat(1001)}), &p.secret),
            None,
            "token_connection_data_too_long",
        ),
    ];
    let mut messages = std::collections::HashSet::new();
    for (label, tok, requested, code) in &cases {
        let (mut ws, first) = Ws::connect(&server.addr, tok, *requested);
        assert_eq!((first["type"].as_str(), first["code"].as_str()), (Some("error"), Some(*code)), "{label}: {first}");
        let msg = first["message"].as_str().unwrap().to_owned();
        assert!(messages.insert(msg.clone()), "{label}: message {msg:?} reused");
        assert_eq!(ws.expect_close(), Some(4003), "{label}");
    }
    assert!(messages.len() >= 12);
    // Messages say what is wrong in words a developer can act on.
    let find = |c: &str| cases.iter().position(|x| x.3 == c).unwrap();
    let (_, first) = Ws::connect(&server.addr, &cases[find("token_expired")].1, None);
    assert!(first["message"].as_str().unwrap().contains("expired"));
    let (_, first) = Ws::connect(&server.addr, &cases[find("token_wrong_project")].1, None);
    assert!(first["message"].as_str().unwrap().contains("another project"));
    let (_, first) = Ws::connect(&server.addr, &cases[find("token_forged")].1, None);
    assert!(first["message"].as_str().unwrap().contains("not signed with the project's secret"));

    // The protocol version is checked, and the first message must be connect or resume.
    let mut ws = Ws::open(&server.addr);
    ws.send(&json!({"type": "connect", "v": 99, "token": jwt(json!({}), &p.secret)}));
    assert_eq!(ws.next().unwrap()["code"], "unsupported_version");
    let mut ws = Ws::open(&server.addr);
    ws.send(&json!({"type": "publish", "stream": {}}));
    assert_eq!(ws.next().unwrap()["code"], "not_connected");
    let mut ws = Ws::open(&server.addr);
    ws.send_raw(tungstenite::Message::Text("{not json".into()));
    assert_eq!(ws.next().unwrap()["code"], "bad_request");

    // The valid token is accepted, in both formats.
    let (_ok, w) = Ws::join(&server.addr, &jwt(json!({}), &p.secret));
    assert_eq!(w["e2ee"], true);
    for data in ["alice+smith", "alice%20smith"] {
        let t1 = umbra_server::token::sign_t1(
            &p.key,
            &p.secret,
            &format!(
                "session_id={sid}&create_time={now}&expire_time={}&role=moderator&nonce=1&connection_data={data}",
                now + 60
            ),
        );
        let (_ok, w) = Ws::join(&server.addr, &t1);
        assert_eq!((w["role"].as_str(), w["connection_data"].as_str()), (Some("moderator"), Some("alice smith")));
    }
    let forged_t1 =
        umbra_server::token::sign_t1(&p.key, &q.secret, &format!("session_id={sid}&expire_time={}", now + 60));
    assert_eq!(Ws::connect(&server.addr, &forged_t1, None).1["code"], "token_forged");
    let expired_t1 =
        umbra_server::token::sign_t1(&p.key, &p.secret, &format!("session_id={sid}&expire_time={}", now - 600));
    assert_eq!(Ws::connect(&server.addr, &expired_t1, None).1["code"], "token_expired");
}

#[test]
fn a_dropped_socket_resumes_and_replays_what_it_missed() {
    let (_d, server, p, sid) = setup("");
    let (a, wa) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let a_id = wa["connection_id"].as_str().unwrap().to_owned();
    let resume_token = wa["resume_token"].as_str().unwrap().to_owned();
    let seen = a.last_seq;
    a.kill();
    // While A is away, B publishes and signals.
    let stream_id = b.request(json!({"type": "publish", "stream": {}}))["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(b.request(json!({"type": "signal", "data": "while you were away"}))["type"], "ack");
    assert_eq!(b.expect("signal")["data"], "while you were away");

    let mut bad = Ws::open(&server.addr);
    bad.send(&json!({"type": "resume", "v": 1, "session_id": sid, "connection_id": a_id, "resume_token": "guess", "last_seq": seen}));
    assert_eq!(bad.next().unwrap()["code"], "resume_bad_token");

    let mut a2 = Ws::open(&server.addr);
    a2.send(&json!({"type": "resume", "v": 1, "session_id": sid, "connection_id": a_id, "resume_token": resume_token, "last_seq": seen}));
    let r = a2.next().unwrap();
    assert_eq!(r["type"], "resumed", "{r}");
    assert_eq!(a2.expect("stream_created")["stream"]["stream_id"], stream_id.as_str());
    assert_eq!(a2.expect("signal")["data"], "while you were away");
    assert_eq!(a2.request(json!({"type": "signal", "data": "back"}))["type"], "ack");
    assert_eq!(b.expect("signal")["data"], "back");
    assert!(b.pending().iter().all(|m| m["type"] != "connection_destroyed"), "B never saw A leave");
}

#[test]
fn a_silent_or_vanished_client_is_removed_after_the_resume_window() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Server::start(
        dir.path(),
        &["--heartbeat-interval-secs", "1", "--heartbeat-timeout-secs", "2", "--resume-window-secs", "1"],
    );
    let sid = new_session(&server.addr, &p, "");
    let (mut watcher, w) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!((w["heartbeat_interval_ms"].as_u64(), w["resume_window_ms"].as_u64()), (Some(1000), Some(1000)));
    // `silent` connects and then says nothing: no heartbeat.
    let (_silent, ws) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let silent_id = ws["connection_id"].as_str().unwrap().to_owned();
    let (vanished, wv) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let vanished_id = wv["connection_id"].as_str().unwrap().to_owned();
    vanished.kill();
    let mut gone = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while gone.len() < 2 {
        assert!(std::time::Instant::now() < deadline, "not removed in time: {gone:?}");
        // The watcher keeps its own heartbeat going while it waits.
        let ack = watcher.request(json!({"type": "ping"}));
        assert_eq!(ack["type"], "pong");
        while let Some(i) = watcher.pending().iter().position(|m| m["type"] == "connection_destroyed") {
            let _ = i;
            let ev = watcher.expect("connection_destroyed");
            assert_eq!(ev["reason"], "networkDisconnected");
            gone.insert(ev["connection"]["connection_id"].as_str().unwrap().to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(gone.contains(&silent_id) && gone.contains(&vanished_id));
}

#[test]
fn a_large_session_is_described_in_pages_before_any_event() {
    let (_d, server, p, sid) = setup("");
    let mut ids = std::collections::BTreeSet::new();
    let mut clients = vec![];
    for i in 0..150 {
        let (mut ws, w) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some(&format!("c{i}"))));
        ids.insert(w["connection_id"].as_str().unwrap().to_owned());
        if i == 0 {
            let ack = ws.request(json!({"type": "publish", "stream": {"name": "first"}}));
            assert_eq!(ack["type"], "ack");
        }
        clients.push(ws);
    }
    let (mut late, w) = Ws::connect(&server.addr, &token(&p, &sid, "publisher", None), None);
    assert_eq!(w["type"], "welcome");
    assert_eq!(w["complete"], false);
    assert_eq!(w["connections"].as_array().unwrap().len(), 100);
    assert_eq!(w["streams"].as_array().unwrap().len(), 1);
    let snap = late.next().unwrap();
    assert_eq!((snap["type"].as_str(), snap["complete"].as_bool()), (Some("snapshot"), Some(true)), "{snap}");
    assert_eq!(snap["connections"].as_array().unwrap().len(), 50);
    let described: std::collections::BTreeSet<String> = w["connections"]
        .as_array()
        .unwrap()
        .iter()
        .chain(snap["connections"].as_array().unwrap())
        .map(|c| c["connection_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(described, ids, "every earlier connection, once");
    // Events come after the description.
    let (_another, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    assert_eq!(late.next().unwrap()["type"], "connection_created");
    // A small session's welcome is complete on its own.
    let small = new_session(&server.addr, &p, "");
    let (_s, w) = Ws::join(&server.addr, &token(&p, &small, "publisher", None));
    assert_eq!(w["complete"], true);
    drop(clients);
}

#[test]
fn requests_are_checked_against_the_protocol_types() {
    let (_d, server, p, sid) = setup("");
    let (mut a, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let stream_id = a.request(json!({"type": "publish", "stream": {}}))["stream_id"].as_str().unwrap().to_owned();
    // A property's value must have the property's type.
    for (property, value) in [
        ("has_audio", json!({"width": 640, "height": 480})),
        ("has_video", json!("no")),
        ("video_dimensions", json!(true)),
        ("video_dimensions", json!({"width": 640})),
        ("name", json!("x")),
    ] {
        let e = a.request(
            json!({"type": "set_stream_property", "stream_id": stream_id, "property": property, "value": value}),
        );
        assert_eq!(
            (e["type"].as_str(), e["code"].as_str()),
            (Some("error"), Some("bad_request")),
            "{property} {value}: {e}"
        );
    }
    let ack = a.request(json!({"type": "set_stream_property", "stream_id": stream_id, "property": "video_dimensions", "value": {"width": 640, "height": 480}}));
    assert_eq!(ack["type"], "ack", "{ack}");
    let ev = a.expect("stream_property_changed");
    assert_eq!((&ev["old_value"], &ev["new_value"]), (&Value::Null, &json!({"width": 640, "height": 480})));

    // A refused message is answered with its id when the id is a number or a string.
    a.send(&json!({"type": "dance", "id": "step-1"}));
    let e = a.expect("error");
    assert_eq!((e["id"].as_str(), e["code"].as_str()), (Some("step-1"), Some("bad_request")), "{e}");
    a.send(&json!({"type": "subscribe", "id": 77}));
    let e = a.expect("error");
    assert_eq!((e["id"].as_u64(), e["code"].as_str()), (Some(77), Some("bad_request")), "{e}");
    a.send(&json!({"type": "ping", "id": {"an": "object"}}));
    let e = a.expect("error");
    assert_eq!((e["id"].clone(), e["code"].as_str()), (Value::Null, Some("bad_request")), "{e}");
    a.send_raw(tungstenite::Message::Binary(vec![1, 2, 3].into()));
    assert_eq!(a.expect("error")["code"], "bad_request");
    // A second connect on a connected socket (connect carries no id).
    a.send(&json!({"type": "connect", "v": 1, "token": token(&p, &sid, "publisher", None)}));
    let e = a.expect("error");
    assert_eq!((e["id"].clone(), e["code"].as_str()), (Value::Null, Some("already_connected")), "{e}");
    assert_eq!(a.request(json!({"type": "ping"}))["type"], "pong");
}

/// A protocol-level participant: joins, maybe publishes, and otherwise only holds its socket.
fn participant(addr: &str, p: &Project, sid: &str, i: usize, publish: bool) -> (Ws, String, Option<String>) {
    let (mut ws, w) = Ws::join(addr, &token(p, sid, "publisher", Some(&format!("c{i}"))));
    let id = w["connection_id"].as_str().unwrap().to_owned();
    let stream = publish.then(|| {
        let ack = ws.request(json!({"type": "publish", "stream": {"name": format!("s{i}")}}));
        assert_eq!(ack["type"], "ack", "{ack}");
        ack["stream_id"].as_str().unwrap().to_owned()
    });
    (ws, id, stream)
}

#[test]
fn a_late_joiner_of_a_session_of_150_learns_every_connection_and_stream_then_the_changes() {
    const CONNECTIONS: usize = 150;
    const STREAMS: usize = 120;
    let (_d, server, p, sid) = setup("");
    let mut sockets = Vec::new();
    let (mut conn_ids, mut stream_ids) = (BTreeSet::new(), BTreeSet::new());
    let mut owner = std::collections::HashMap::new();
    for i in 0..CONNECTIONS {
        let (ws, id, stream) = participant(&server.addr, &p, &sid, i, i < STREAMS);
        if let Some(s) = stream {
            owner.insert(s.clone(), (id.clone(), i));
            stream_ids.insert(s);
        }
        conn_ids.insert(id);
        sockets.push(ws);
    }

    let (mut late, welcome) = Ws::join(&server.addr, &token(&p, &sid, "subscriber", None));
    let mut pages = vec![welcome];
    while pages.last().unwrap()["complete"] == false {
        let next = late.next().expect("a snapshot page");
        assert_eq!(next["type"], "snapshot", "pages come before any event: {next}");
        assert!(next.get("seq").is_none());
        pages.push(next);
    }
    assert_eq!(pages.len(), 2, "150 connections and 120 streams take two pages of 100");
    let listed = |field: &str, id: &str| -> Vec<Value> {
        pages.iter().flat_map(|pg| pg[field].as_array().unwrap().clone()).map(|x| x[id].clone()).collect()
    };
    let described_conns = listed("connections", "connection_id");
    let described_streams: Vec<Value> = pages.iter().flat_map(|pg| pg["streams"].as_array().unwrap().clone()).collect();
    assert_eq!(described_conns.len(), CONNECTIONS, "each connection once");
    assert_eq!(described_streams.len(), STREAMS, "each stream once");
    let as_set = |v: &[Value]| v.iter().map(|x| x.as_str().unwrap().to_owned()).collect::<BTreeSet<_>>();
    assert_eq!(as_set(&described_conns), conn_ids);
    assert_eq!(as_set(&listed("streams", "stream_id")), stream_ids);
    for s in &described_streams {
        let (publisher, i) = &owner[s["stream_id"].as_str().unwrap()];
        assert_eq!(
            (s["connection_id"].as_str(), s["name"].as_str()),
            (Some(publisher.as_str()), Some(format!("s{i}").as_str()))
        );
    }

    // Then the session's changes, in order, numbered from 1.
    let (_newcomer, newcomer_id, _) = participant(&server.addr, &p, &sid, CONNECTIONS, false);
    let ev = late.next().unwrap();
    assert_eq!((ev["type"].as_str(), ev["seq"].as_u64()), (Some("connection_created"), Some(1)), "{ev}");
    assert_eq!(ev["connection"]["connection_id"], newcomer_id.as_str());
    let unpublished = owner.iter().find(|(_, (_, i))| *i == 7).map(|(s, _)| s.clone()).unwrap();
    assert_eq!(sockets[7].request(json!({"type": "unpublish", "stream_id": unpublished}))["type"], "ack");
    let ev = late.next().unwrap();
    assert_eq!((ev["type"].as_str(), ev["seq"].as_u64()), (Some("stream_destroyed"), Some(2)), "{ev}");
    assert_eq!(
        (ev["stream"]["stream_id"].as_str(), ev["reason"].as_str()),
        (Some(unpublished.as_str()), Some("unpublished"))
    );
    // A publisher that leaves takes its stream with it.
    let leaver_stream = owner.iter().find(|(_, (_, i))| *i == 8).map(|(s, _)| s.clone()).unwrap();
    sockets[8].send(&json!({"type": "leave"}));
    let ev = late.next().unwrap();
    assert_eq!(
        (ev["type"].as_str(), ev["reason"].as_str()),
        (Some("stream_destroyed"), Some("clientDisconnected")),
        "{ev}"
    );
    assert_eq!(ev["stream"]["stream_id"], leaver_stream.as_str());
    let ev = late.next().unwrap();
    assert_eq!((ev["type"].as_str(), ev["seq"].as_u64()), (Some("connection_destroyed"), Some(4)), "{ev}");
    drop(sockets);
}
