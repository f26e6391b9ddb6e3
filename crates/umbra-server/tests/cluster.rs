//! Cluster mode (issue 14): three real `umbra serve` nodes on the test's own PostgreSQL and Redis
//! (tests/common/cluster.rs), clients on different nodes of one session, native clients with real
//! codecs and SFrame through the session's router node, and nodes that die or drain.

mod common;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::cluster::Cluster;
use common::{Ws, auth, http, new_session, token};
use serde_json::{Value, json};
use umbra_client::{Event, PublisherEvent, PublisherSettings, Session, SessionConfig, SubscriberEvent};

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

struct Client {
    session: Session,
    events: Receiver<Event>,
    seen: Vec<Event>,
}

impl Client {
    fn join(url: &str, c: &Cluster, sid: &str) -> Client {
        let mut session =
            Session::new(&c.project.key, sid, SessionConfig { server_url: url.to_owned(), ..Default::default() });
        let events = session.events().unwrap();
        session.set_encryption_secret(SECRET).unwrap();
        session.connect(&token(&c.project, sid, "publisher", None)).unwrap();
        let mut cl = Client { session, events, seen: Vec::new() };
        cl.wait(Duration::from_secs(20), |e| matches!(e, Event::Connected { .. })).expect("connected");
        cl
    }

    fn wait(&mut self, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(e) => {
                    let hit = pred(&e);
                    self.seen.push(e.clone());
                    if hit {
                        return Some(e);
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return None,
            }
        }
        None
    }

    fn stream_id(&mut self) -> String {
        let found = self.seen.iter().find_map(|e| match e {
            Event::StreamCreated(s) => Some(s.stream_id.clone()),
            _ => None,
        });
        found.unwrap_or_else(|| match self.wait(Duration::from_secs(20), |e| matches!(e, Event::StreamCreated(_))) {
            Some(Event::StreamCreated(s)) => s.stream_id,
            _ => panic!("no stream appeared"),
        })
    }

    /// Video frames decoded within `d`.
    fn frames_within(&mut self, d: Duration) -> usize {
        let mut n = 0;
        self.wait(d, |e| {
            if matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. }) {
                n += 1;
            }
            false
        });
        n
    }

    fn mismatches(&self) -> usize {
        self.seen
            .iter()
            .filter(|e| matches!(e, Event::Subscriber { event: SubscriberEvent::EncryptionSecretMismatch, .. }))
            .count()
    }
}

#[test]
fn a_publisher_on_one_node_and_subscribers_on_two_others_decode_e2ee_media() {
    let c = Cluster::start(3, &["--media-bind", "127.0.0.1:0"]);
    let sid = new_session(&c.addr(0), &c.project, "p2p.preference=disabled&e2ee=true");
    let mut publisher = Client::join(&c.node(0).url(), &c, &sid);
    publisher.session.publish(PublisherSettings::test_pattern("camera")).unwrap();
    publisher
        .wait(Duration::from_secs(20), |e| matches!(e, Event::Publisher { event: PublisherEvent::MediaConnected, .. }))
        .unwrap_or_else(|| panic!("publisher media never connected: {:?}\n{}", publisher.seen, c.logs()));
    let mut subs: Vec<Client> = [1, 2].iter().map(|&i| Client::join(&c.node(i).url(), &c, &sid)).collect();
    for s in &mut subs {
        let stream = s.stream_id();
        s.session.subscribe(&stream).unwrap();
    }
    for (i, s) in subs.iter_mut().enumerate() {
        let n = s.frames_within(Duration::from_secs(8));
        assert!(n >= 60, "subscriber on node {}: {n} frames decoded in 8 s\n{}", i + 1, c.logs());
        assert_eq!(s.mismatches(), 0);
    }
}
