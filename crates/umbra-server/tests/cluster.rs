//! Cluster mode (issue 14): three real `umbra serve` nodes on the test's own PostgreSQL and Redis
//! (tests/common/cluster.rs), clients on different nodes of one session, native clients with real
//! codecs and SFrame through the session's router node, and nodes that die or drain.

mod common;

use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::native::Native;
use common::{Ws, auth, http, new_session, token};
use serde_json::{Value, json};

const SECRET: &str = "correct horse battery staple";

fn streams_on(addr: &str, c: &Cluster, session_id: &str) -> Vec<Value> {
    let path = format!("/v2/project/{}/session/{session_id}/stream", c.project.key);
    let r = http(addr, "GET", &path, &[("X-OPENTOK-AUTH", &auth(&c.project))], b"");
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["items"].as_array().unwrap().clone()
}

fn rest(addr: &str, c: &Cluster, method: &str, path: &str, body: &[u8]) -> u16 {
    let a = auth(&c.project);
    let h = [("X-OPENTOK-AUTH", a.as_str()), ("Content-Type", "application/json")];
    http(addr, method, path, &h, body).status
}

#[test]
fn clients_on_three_nodes_share_one_session_and_rest_calls_work_on_any_node() {
    let c = Cluster::start(3, &["--no-media"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=enabled");
    let t = |data: &str| token(&c.project, &sid, "moderator", Some(data));
    let (mut a, wa) = Ws::join(&c.addr(0), &t("a"));
    let (mut b, wb) = Ws::join(&c.addr(1), &t("b"));
    let (mut d, wd) = Ws::join(&c.addr(2), &t("d"));
    let (ida, idb) = (wa["connection_id"].as_str().unwrap(), wb["connection_id"].as_str().unwrap());
    // One session, described the same way wherever the socket landed.
    assert_eq!(wd["connections"].as_array().unwrap().len(), 2, "{wd}");
    assert_eq!(a.expect("connection_created")["connection"]["data"], "b");
    assert_eq!(a.expect("connection_created")["connection"]["data"], "d");
    let home = c.home_of(&sid).expect("the session has a home node");

    let ack = a.request(json!({"type": "publish", "stream": {"name": "cam"}}));
    assert_eq!(ack["type"], "ack", "{ack}");
    let stream_id = ack["stream_id"].as_str().unwrap().to_owned();
    for ws in [&mut b, &mut d] {
        assert_eq!(ws.expect("stream_created")["stream"]["stream_id"], stream_id.as_str());
    }
    for i in 0..3 {
        let items = streams_on(&c.addr(i), &c, &sid);
        assert_eq!(items.len(), 1, "node {i}: {items:?}");
        assert_eq!(items[0]["id"], stream_id.as_str());
    }

    // A REST signal on one node reaches a client whose socket is on another.
    let base = format!("/v2/project/{}/session/{sid}", c.project.key);
    let other = (home + 1) % 3;
    let st =
        rest(&c.addr(other), &c, "POST", &format!("{base}/connection/{ida}/signal"), br#"{"type":"x","data":"to-a"}"#);
    assert_eq!(st, 204);
    let s = a.expect("signal");
    assert_eq!((s["data"].as_str(), s["from"].as_str()), (Some("to-a"), None));
    let st = rest(&c.addr((home + 2) % 3), &c, "POST", &format!("{base}/signal"), br#"{"type":"x","data":"all"}"#);
    assert_eq!(st, 204);
    for ws in [&mut a, &mut b, &mut d] {
        assert_eq!(ws.expect("signal")["data"], "all");
    }
    // Unknown connections are 404 from any node, as on a single node.
    let st = rest(&c.addr(other), &c, "POST", &format!("{base}/connection/nobody/signal"), br#"{"data":"x"}"#);
    assert_eq!(st, 404);

    // A force disconnect on one node removes a client connected to another.
    let st = rest(&c.addr(2), &c, "DELETE", &format!("{base}/connection/{idb}"), b"");
    assert_eq!(st, 204);
    assert_eq!(b.expect_close(), Some(4001));
    let gone = a.expect("connection_destroyed");
    assert_eq!(
        (gone["connection"]["connection_id"].as_str(), gone["reason"].as_str()),
        (Some(idb), Some("forceDisconnected"))
    );
    drop(d);
}

#[test]
fn a_publisher_on_one_node_and_subscribers_on_two_others_decode_e2ee_media() {
    let c = Cluster::start(3, &["--media-bind", "127.0.0.1:0"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=disabled&e2ee=true");
    let mut publisher = Native::join(&c.node(0).url(), &c.project, &sid, SECRET, "publisher");
    publisher.publish_pattern();
    let mut subs: Vec<_> = [1, 2]
        .iter()
        .map(|&i| {
            let mut s = Native::join(&c.node(i).url(), &c.project, &sid, SECRET, "subscriber");
            let id = s.subscribe_first();
            (i, s, id)
        })
        .collect();
    for (i, s, id) in &mut subs {
        let took = s.decoding_again(*id, 60, Duration::from_secs(15));
        assert!(took.is_some(), "subscriber on node {i}: not 60 frames in 15 s\n{}", c.logs());
        s.drain();
        assert!(s.troubles().is_empty(), "subscriber on node {i}: {:?}", s.troubles());
    }
}

/// Resumes a signaling connection through the load balancer, as the SDKs do after a dropped
/// socket: retried with backoff until it is `resumed` or `within` has passed.
fn resume_via(c: &Cluster, welcome: &Value, last_seq: u64, within: Duration) -> (Ws, Value) {
    let deadline = Instant::now() + within;
    let mut delay = Duration::from_millis(100);
    loop {
        let mut ws = Ws::open(&c.lb.addr);
        ws.send(&json!({
            "type": "resume", "v": 1,
            "session_id": welcome["session_id"], "connection_id": welcome["connection_id"],
            "resume_token": welcome["resume_token"], "last_seq": last_seq,
        }));
        match ws.next() {
            Some(m) if m["type"] == "resumed" => return (ws, m),
            other => assert!(Instant::now() < deadline, "no resume within {within:?}: {other:?}\n{}", c.logs()),
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Two clients of one session, one on the session's node and one relayed from another node,
/// until `end` ends the session's node; both then resume through the load balancer and the
/// session carries on (same connections, same stream, signals both ways, nothing destroyed).
fn session_survives(end: impl FnOnce(&mut Cluster, usize), expect_close: Option<u16>) {
    let mut c = Cluster::start(3, &["--no-media"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=enabled");
    let t = |data: &str| token(&c.project, &sid, "publisher", Some(data));
    let (mut a, wa) = Ws::join(&c.addr(0), &t("a"));
    let home = c.home_of(&sid).unwrap();
    let other = (home + 1) % 3;
    let (mut b, wb) = Ws::join(&c.addr(other), &t("b"));
    a.expect("connection_created");
    let ack = a.request(json!({"type": "publish", "stream": {"name": "cam"}}));
    let stream_id = ack["stream_id"].as_str().unwrap().to_owned();
    b.expect("stream_created");
    // Let the mirror write the room (it writes a changed room within 100 ms).
    std::thread::sleep(Duration::from_millis(400));

    end(&mut c, home);
    // The relayed client is told to resume (4004) and the direct one simply loses its socket
    // (SIGKILL) or is told the same (SIGTERM).
    assert_eq!(b.expect_close(), Some(umbra_protocol::close::SESSION_MOVED));
    let a_close = a.expect_close();
    assert_eq!(a_close, expect_close, "the home node's own client");
    let started = Instant::now();
    let (mut a, _) = resume_via(&c, &wa, a.last_seq, Duration::from_secs(10));
    let (mut b, _) = resume_via(&c, &wb, b.last_seq, Duration::from_secs(10));
    let resumed_in = started.elapsed();
    let new_home = c.home_of(&sid).expect("the session has a new home");
    assert_ne!(new_home, home);
    eprintln!(
        "both clients resumed {resumed_in:?} after their node ended; the session moved from n{home} to n{new_home}"
    );

    let items = streams_on(&c.addr(new_home), &c, &sid);
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], stream_id.as_str());
    let to_b = json!({"type": "signal", "to": wb["connection_id"], "data": "after the move"});
    assert_eq!(a.request(to_b)["type"], "ack");
    assert_eq!(b.expect("signal")["data"], "after the move");
    let base = format!("/v2/project/{}/session/{sid}", c.project.key);
    let live = (0..3).find(|i| c.nodes[*i].is_some() && *i != new_home).unwrap();
    assert_eq!(rest(&c.addr(live), &c, "POST", &format!("{base}/signal"), br#"{"data":"rest"}"#), 204);
    for ws in [&mut a, &mut b] {
        assert_eq!(ws.expect("signal")["data"], "rest");
        assert!(
            !ws.pending().iter().any(|m| m["type"] == "connection_destroyed" || m["type"] == "stream_destroyed"),
            "nothing ended: {:?}",
            ws.pending()
        );
    }
}

#[test]
fn a_killed_node_s_session_is_taken_over_and_its_clients_resume_on_another_node() {
    session_survives(|c, home| c.kill(home), None);
}

#[test]
fn a_draining_node_hands_its_session_over_before_it_exits() {
    session_survives(|c, home| c.stop(home), Some(umbra_protocol::close::SESSION_MOVED));
}

/// The session's node ends (SIGKILL, or SIGTERM and its drain) under a native E2EE publisher and
/// subscriber connected through the load balancer: both resume their signaling, the session
/// moves to a live node, both renegotiate on its router with nothing asked of the app, and the
/// subscriber decodes again within 5 s with no mismatch and no frame refused (a publisher whose
/// SFrame counter restarted under the same key would be refused as replays).
fn media_survives(kill: bool) {
    const RECOVERY: Duration = Duration::from_secs(5);
    let mut c = Cluster::start(3, &["--media-bind", "127.0.0.1:0"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=disabled&e2ee=true");
    let publisher = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "publisher");
    let mut sub = Native::join(&c.lb.url(), &c.project, &sid, SECRET, "subscriber");
    publisher.session.publish(umbra_client::PublisherSettings::with_pattern("failover", 160, 120, 15)).unwrap();
    let id = sub.subscribe_first();
    assert!(sub.decoding_again(id, 15, Duration::from_secs(20)).is_some(), "no media before\n{}", c.logs());
    let home = c.home_of(&sid).expect("the session has a node");
    let refused_before = sub.session.subscriber_stats(id).decrypt_failures;

    // Signalled without waiting for the node to end, so the subscriber is watched from the first
    // moment (a drain keeps forwarding for a while before the node exits).
    let how = if kill { "-KILL" } else { "-TERM" };
    let pid = c.node(home).pid().to_string();
    assert!(std::process::Command::new("kill").args([how, &pid]).status().unwrap().success());
    // 15 fps: a stall longer than a few frame intervals is the move.
    let (stall, frames) = sub.longest_stall(id, Duration::from_secs(12));
    eprintln!("kill {how} of node n{home}: longest stall {stall:?}, {frames} frames decoded in 12 s");
    if let Some(mut child) = c.nodes[home].take().and_then(|mut s| s.take_child()) {
        let _ = child.wait();
    }
    let (mut publisher, mut sub) = (publisher, sub);
    publisher.drain();
    sub.drain();
    assert!(stall <= RECOVERY && frames >= 100, "stalled {stall:?} ({frames} frames in 12 s)\n{}", c.logs());
    let new_home = c.home_of(&sid).expect("a new node");
    assert_ne!(new_home, home, "the session moved");

    for (who, n) in [("publisher", &publisher), ("subscriber", &sub)] {
        let count = |pred: fn(&umbra_client::Event) -> bool| n.seen.iter().filter(|e| pred(e)).count();
        let reconnecting = count(|e| matches!(e, umbra_client::Event::Reconnecting));
        assert!(reconnecting >= 1, "{who} never reconnected: {:?}", n.seen);
        assert_eq!(reconnecting, count(|e| matches!(e, umbra_client::Event::Reconnected)), "{who}: {:?}", n.seen);
        assert!(n.troubles().is_empty(), "{who}: {:?}", n.troubles());
    }
    assert_eq!(sub.session.subscriber_stats(id).decrypt_failures, refused_before, "frames refused after the move");
}

#[test]
fn media_survives_a_killed_node() {
    media_survives(true);
}

#[test]
fn media_survives_a_draining_node() {
    media_survives(false);
}
