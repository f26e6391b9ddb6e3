//! What one token holder can make a real `umbra serve` hold (issue 11): a socket that stops
//! reading is dropped within the write timeout and its memory freed, every cap refuses with its
//! own code, and property values are bounded. Small limits are configured where the defaults
//! would make a test slow.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// A signal's `data` at the protocol's limit.
fn big_data() -> String {
    "x".repeat(umbra_protocol::limits::MAX_SIGNAL_DATA)
}

fn metric(server: &Server, name: &str) -> i64 {
    let m = String::from_utf8(http(&server.addr, "GET", "/metrics", &[], b"").body).unwrap();
    m.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib / 1024.0
}

fn wait_for(what: &str, within: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    start.elapsed()
}

/// Signal limits no test here means to hit.
const UNLIMITED_SIGNALS: [&str; 8] = [
    "--signal-rate-per-sec",
    "1000000",
    "--signal-burst",
    "1000000",
    "--signal-bytes-per-sec",
    "2000000000",
    "--signal-bytes-burst",
    "2000000000",
];

#[test]
fn a_socket_that_stops_reading_is_dropped_within_the_write_timeout_and_resumes() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let mut args = vec![
        "--signaling-write-timeout-secs",
        "1",
        // Outbox and replay large enough that only the write timeout can drop the socket, and
        // every event is still there to resume from.
        "--signaling-outbox-bytes",
        "268435456",
        "--signaling-outbox-frames",
        "100000",
        "--signaling-replay-bytes",
        "268435456",
        "--signaling-replay-frames",
        "100000",
    ];
    args.extend(UNLIMITED_SIGNALS);
    let server = Server::start(dir.path(), &args);
    let sid = new_session(&server.addr, &p, "");
    let (a, wa) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("a")));
    let (a_id, resume_token) = (wa["connection_id"].as_str().unwrap(), wa["resume_token"].as_str().unwrap());
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("b")));
    // A read nothing past its welcome: B's connection_created is seq 1, unread.
    let data = big_data();
    let mut sent = 0;
    let mut stopped = None;
    // Loopback buffers hold some MB; 40 MB is far beyond them.
    while sent < 5000 {
        let ack = b.request(json!({"type": "signal", "to": a_id, "data": data}));
        assert_eq!(ack["type"], "ack", "{ack}");
        sent += 1;
        if sent % 250 == 0 && metric(&server, "umbra_signaling_slow_sockets_dropped_total") > 0 {
            stopped = Some(Duration::ZERO);
            break;
        }
    }
    let stopped = stopped.unwrap_or_else(|| {
        wait_for("the non-reading socket is dropped", Duration::from_secs(4), || {
            metric(&server, "umbra_signaling_slow_sockets_dropped_total") > 0
        })
    });
    eprintln!("{sent} signals of 8 KiB sent; dropped {stopped:?} after the last");
    assert!(server.log().contains("signaling write timed out"), "dropped by the write timeout");
    wait_for("the dropped socket's outbox is freed", Duration::from_secs(2), || {
        metric(&server, "umbra_signaling_outbox_bytes") == 0
    });
    // Others saw nothing: the connection waits to be resumed.
    assert!(b.pending().iter().all(|m| m["type"] != "connection_destroyed"));

    let mut a2 = Ws::open(&server.addr);
    a2.send(&json!({"type": "resume", "v": 1, "session_id": sid, "connection_id": a_id, "resume_token": resume_token, "last_seq": 0}));
    let r = a2.next().unwrap();
    assert_eq!(r["type"], "resumed", "{r}");
    assert_eq!(r["last_seq"], sent + 1);
    assert_eq!(a2.next().unwrap()["type"], "connection_created");
    for i in 0..sent {
        let s = a2.next().unwrap();
        assert_eq!((s["type"].as_str(), s["seq"].as_u64()), (Some("signal"), Some(i + 2)), "replayed in order");
    }
    assert_eq!(a2.request(json!({"type": "ping"}))["type"], "pong");
    assert_eq!(b.request(json!({"type": "signal", "to": a_id, "data": "welcome back"}))["type"], "ack");
    assert_eq!(a2.expect("signal")["data"], "welcome back");
    drop(a);
}

#[test]
fn sockets_that_stop_reading_pin_bounded_memory_which_is_freed() {
    const NON_READERS: usize = 4;
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    // Default outbox and replay bounds; a write timeout longer than the test so that only the
    // byte bound can drop the sockets.
    let mut args = vec!["--signaling-write-timeout-secs", "60"];
    args.extend(UNLIMITED_SIGNALS);
    let server = Server::start(dir.path(), &args);
    let sid = new_session(&server.addr, &p, "");
    let mut idle = vec![];
    let mut ids = vec![];
    for i in 0..NON_READERS {
        let (ws, w) = Ws::join(&server.addr, &token(&p, &sid, "subscriber", Some(&format!("r{i}"))));
        ids.push(w["connection_id"].as_str().unwrap().to_owned());
        idle.push(ws);
    }
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("b")));
    let before = rss_mib(server.pid());
    let mut peak = before;
    let data = big_data();
    let mut sent = 0;
    while metric(&server, "umbra_signaling_slow_sockets_dropped_total") < NON_READERS as i64 {
        assert!(sent < 40_000, "not every non-reading socket was dropped after {sent} signals");
        for to in &ids {
            for _ in 0..50 {
                assert_eq!(b.request(json!({"type": "signal", "to": to, "data": data}))["type"], "ack");
                sent += 1;
            }
        }
        peak = peak.max(rss_mib(server.pid()));
    }
    let queued = metric(&server, "umbra_signaling_outbox_bytes");
    let after = rss_mib(server.pid());
    eprintln!(
        "{NON_READERS} non-reading sockets, {sent} signals of 8 KiB ({} MiB): server RSS {before:.1} MiB before, \
         {peak:.1} MiB at most, {after:.1} MiB after the drops; outbox bytes after: {queued}",
        sent * data.len() / (1024 * 1024)
    );
    assert_eq!(queued, 0, "the outboxes of the dropped sockets are freed");
    // Each socket holds at most its outbox (1 MiB) and replay (512 KiB) bounds and a write buffer;
    // before the bounds, 4 such sockets pinned 220-350 MB.
    assert!(peak - before < 32.0, "server memory grew by {:.1} MiB", peak - before);
    drop(idle);
}

#[test]
fn connections_per_token_and_per_session_are_capped_with_their_codes() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Server::start(dir.path(), &["--max-connections-per-token", "2", "--max-connections-per-session", "3"]);
    let sid = new_session(&server.addr, &p, "");
    let shared = token(&p, &sid, "publisher", Some("shared"));
    let (mut first, _) = Ws::join(&server.addr, &shared);
    let (_second, _) = Ws::join(&server.addr, &shared);
    let (mut ws, e) = Ws::connect(&server.addr, &shared, None);
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("too_many_token_connections")), "{e}");
    assert!(e["message"].as_str().unwrap().contains("2 live connections"), "{e}");
    assert_eq!(ws.expect_close(), Some(4003));
    // The count is of live connections: once one leaves, the token connects again.
    first.send(&json!({"type": "leave"}));
    assert_eq!(first.expect_close(), Some(1000));
    let (_third, _) = Ws::join(&server.addr, &shared);

    let (_other, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("other")));
    let (mut ws, e) = Ws::connect(&server.addr, &token(&p, &sid, "publisher", Some("fourth")), None);
    assert_eq!(e["code"], "session_full", "{e}");
    assert!(e["message"].as_str().unwrap().contains("3 connections"), "{e}");
    assert_eq!(ws.expect_close(), Some(4003));
    // Another session is not full.
    let sid2 = new_session(&server.addr, &p, "");
    let (_elsewhere, _) = Ws::join(&server.addr, &token(&p, &sid2, "publisher", None));
}

#[test]
fn streams_subscriptions_and_signals_are_capped_with_their_codes() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Server::start(
        dir.path(),
        &[
            "--max-streams-per-connection",
            "2",
            "--max-streams-per-session",
            "3",
            "--max-subscriptions-per-connection",
            "2",
            "--signal-burst",
            "5",
            "--signal-rate-per-sec",
            "1",
            "--signal-bytes-burst",
            "20000",
            "--signal-bytes-per-sec",
            "100",
        ],
    );
    let sid = new_session(&server.addr, &p, "");
    let (mut a, wa) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("a")));
    let a_id = wa["connection_id"].as_str().unwrap().to_owned();
    let (mut b, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", Some("b")));
    let (mut c, _) = Ws::join(&server.addr, &token(&p, &sid, "subscriber", Some("c")));
    let publish = json!({"type": "publish", "stream": {}});

    // Streams: two per connection, three in the session.
    let s1 = a.request(publish.clone())["stream_id"].as_str().unwrap().to_owned();
    let s2 = a.request(publish.clone())["stream_id"].as_str().unwrap().to_owned();
    let e = a.request(publish.clone());
    assert_eq!(e["code"], "too_many_streams", "{e}");
    let s3 = b.request(publish.clone())["stream_id"].as_str().unwrap().to_owned();
    let e = b.request(publish.clone());
    assert_eq!(e["code"], "too_many_session_streams", "{e}");
    assert_eq!(a.request(json!({"type": "unpublish", "stream_id": s2}))["type"], "ack");
    assert_eq!(b.request(publish.clone())["type"], "ack", "a freed place is taken again");
    let streams = http(
        &server.addr,
        "GET",
        &format!("/v2/project/{}/session/{sid}/stream", p.key),
        &[("X-OPENTOK-AUTH", &auth(&p))],
        b"",
    );
    assert_eq!(streams.json()["count"], 3, "no refused publish left a stream");

    // Subscriptions: two per connection; ending one frees its place, and so does the stream's end.
    let subscribe = |s: &str| json!({"type": "subscribe", "stream_id": s, "sdp_offer": "v=0"});
    let sub1 = c.request(subscribe(&s1))["subscription_id"].as_str().unwrap().to_owned();
    assert_eq!(c.request(subscribe(&s3))["type"], "ack");
    let e = c.request(subscribe(&s3));
    assert_eq!(e["code"], "too_many_subscriptions", "{e}");
    assert_eq!(c.request(json!({"type": "unsubscribe", "subscription_id": sub1}))["type"], "ack");
    assert_eq!(c.request(subscribe(&s1))["type"], "ack");
    assert_eq!(a.request(json!({"type": "unpublish", "stream_id": s1}))["type"], "ack");
    assert_eq!(c.request(subscribe(&s3))["type"], "ack", "the ended stream's subscription no longer counts");

    // Signals: a burst of five, then refused (and not delivered); bytes are counted too.
    for i in 0..5 {
        assert_eq!(c.request(json!({"type": "signal", "to": a_id, "data": format!("s{i}")}))["type"], "ack");
    }
    let e = c.request(json!({"type": "signal", "data": "one too many"}));
    assert_eq!(e["code"], "signal_rate_limited", "{e}");
    assert!(e["message"].as_str().unwrap().contains("1 a second"), "{e}");
    let data = big_data();
    assert_eq!(b.request(json!({"type": "signal", "data": data}))["type"], "ack");
    assert_eq!(b.request(json!({"type": "signal", "data": data}))["type"], "ack");
    let e = b.request(json!({"type": "signal", "data": data}));
    assert_eq!(e["code"], "signal_rate_limited", "the third 8 KiB signal exceeds 20000 bytes: {e}");
    // Only admitted signals were delivered.
    assert_eq!(a.request(json!({"type": "ping"}))["type"], "pong");
    let delivered: Vec<Value> = a.pending().iter().filter(|m| m["type"] == "signal").cloned().collect();
    assert!(delivered.iter().all(|s| s["data"] != "one too many"));
    assert_eq!(delivered.iter().filter(|s| s["data"].as_str() == Some(&data)).count(), 2, "two big ones");
}

#[test]
fn property_values_candidates_and_request_ids_out_of_bounds_are_refused() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Server::start(dir.path(), &[]);
    let sid = new_session(&server.addr, &p, "");
    let (mut a, _) = Ws::join(&server.addr, &token(&p, &sid, "publisher", None));
    let stream_id = a.request(json!({"type": "publish", "stream": {}}))["stream_id"].as_str().unwrap().to_owned();
    let nested = (0..100).fold(json!(1), |v, _| json!({ "width": v }));
    for value in [
        json!({"width": 0, "height": 480}),
        json!({"width": 640, "height": 16385}),
        json!({"width": 4294967295u64, "height": 4294967295u64}),
        json!({"width": 4294967296u64, "height": 1}),
        json!({"width": -640, "height": 480}),
        json!({"width": 640.5, "height": 480}),
        json!({"width": "640", "height": "480"}),
        json!({"width": 640, "height": 480, "rotation": 90}),
        json!([640, 480]),
        json!("x".repeat(60_000)),
        nested,
    ] {
        let e = a.request(json!({"type": "set_stream_property", "stream_id": stream_id, "property": "video_dimensions", "value": value}));
        assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some("bad_request")), "{value}: {e}");
    }
    let ok = a.request(json!({"type": "set_stream_property", "stream_id": stream_id, "property": "video_dimensions", "value": {"width": 7680, "height": 4320}}));
    assert_eq!(ok["type"], "ack", "{ok}");
    assert_eq!(a.expect("stream_property_changed")["new_value"], json!({"width": 7680, "height": 4320}));

    // A relayed subscription of its own stream, to send candidates on.
    let sub = a.request(json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": "v=0"}))["subscription_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let long = json!({"candidate": "c".repeat(1025), "sdpMid": "0", "sdpMLineIndex": 0});
    let e = a.request(json!({"type": "ice", "subscription_id": sub, "candidate": long}));
    assert_eq!(e["code"], "bad_request", "{e}");
    let long_mid = json!({"candidate": "candidate:1", "sdpMid": "m".repeat(65)});
    assert_eq!(a.request(json!({"type": "ice", "subscription_id": sub, "candidate": long_mid}))["code"], "bad_request");
    // A string id too long to echo is refused without it.
    a.send(&json!({"type": "ping", "id": "i".repeat(129)}));
    let e = a.expect("error");
    assert_eq!((e["id"].clone(), e["code"].as_str()), (Value::Null, Some("bad_request")), "{e}");
    a.send(&json!({"type": "nope", "id": "i".repeat(129)}));
    let e = a.expect("error");
    assert_eq!((e["id"].clone(), e["code"].as_str()), (Value::Null, Some("bad_request")), "{e}");
    assert_eq!(a.request(json!({"type": "ping"}))["type"], "pong");
}
