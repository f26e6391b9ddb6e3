//! `media_restart` on the native SDK, against a scripted signaling server and two real str0m
//! "routers" on loopback UDP (the cluster that really sends `media_restart` is tested where it
//! is built): the publisher's upstream goes to router A; A dies and the server asks for a
//! restart; the SDK renegotiates a new peer connection for the same stream with router B.
//!
//! What must hold, checked on the encrypted frames that reach the routers: the SFrame KID stays
//! and the frame counter goes on across the move (a counter restarted under one key would reuse
//! its AES-CTR keystream), and one receiver's decryptor (key ring, replay window, mismatch
//! detector) fed by both routers in turn decrypts everything with no mismatch, as a subscriber
//! would. The app sees no error and no lost publisher. A repeated `media_restart` whose
//! `renegotiate` the server refuses (nothing pending) leaves the working connection in place.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::change::SdpOffer;
use str0m::media::MediaKind;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event as RtcEvent, Input, Output, Rtc};
use tungstenite::{Message, WebSocket};
use umbra_client::{Event, PublisherEvent, PublisherSettings, Session, SessionConfig};
use umbra_e2ee::{BaseKey, Codec, E2eeEvent, EncryptionSecret, Header, KeyRing, StreamDecryptor};

const SECRET: &str = "moving routers keeps the keys";
const SESSION: &str = "1_restart-test";
const WAIT: Duration = Duration::from_secs(20);

/// The server end of the signaling socket, speaking JSON text frames.
struct Sig(WebSocket<TcpStream>);

impl Sig {
    fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).expect("send to the client");
    }

    /// The next client message, if one arrives within a few milliseconds.
    fn poll(&mut self) -> Option<Value> {
        match self.0.read() {
            Ok(Message::Text(t)) => Some(serde_json::from_str(t.as_str()).expect("client JSON")),
            Ok(_) => None,
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(e) => panic!("signaling socket: {e}"),
        }
    }

    /// Waits for a request of `kind`, answering heartbeats on the way.
    fn expect(&mut self, kind: &str) -> Value {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            match self.poll() {
                Some(m) if m["type"] == kind => return m,
                Some(m) if m["type"] == "ping" => {}
                Some(m) => panic!("expected {kind}, got {m}"),
                None => {}
            }
        }
        panic!("no {kind} within {WAIT:?}");
    }
}

/// A stand-in media router: one str0m peer connection answering the client's offer on its own
/// loopback UDP socket, collecting the audio frames it receives.
struct Router {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    audio: Vec<Vec<u8>>,
    buf: Vec<u8>,
}

impl Router {
    fn answer(offer: &str) -> (Router, String) {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(2))).unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder().set_ice_lite(true).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        let answer = rtc.sdp_api().accept_offer(SdpOffer::from_sdp_string(offer).expect("client offer")).unwrap();
        (Router { rtc, socket, local, audio: Vec::new(), buf: vec![0; 2000] }, answer.to_sdp_string())
    }

    /// Runs the peer connection for a few milliseconds.
    fn drive(&mut self) {
        let now = Instant::now();
        self.rtc.handle_input(Input::Timeout(now)).unwrap();
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Event(RtcEvent::MediaData(d)) => {
                    let audio = self.rtc.media(d.mid).is_some_and(|m| m.kind() == MediaKind::Audio);
                    if audio {
                        self.audio.push(d.data.to_vec());
                    }
                }
                Output::Event(_) => {}
                Output::Timeout(_) => break,
            }
        }
        if let Ok((n, source)) = self.socket.recv_from(&mut self.buf)
            && let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &self.buf[..n])
        {
            self.rtc.handle_input(Input::Receive(Instant::now(), r)).unwrap();
        }
    }

    /// Drives until `n` audio frames arrived, answering heartbeats on `sig`.
    fn collect(&mut self, sig: &mut Sig, n: usize) {
        let end = Instant::now() + WAIT;
        while self.audio.len() < n {
            assert!(Instant::now() < end, "only {} audio frames within {WAIT:?}", self.audio.len());
            self.drive();
            if let Some(m) = sig.poll() {
                assert_eq!(m["type"], "ping", "unexpected client message {m}");
            }
        }
    }
}

/// KID and counter of an encrypted Opus frame (one readable byte, then the SFrame header).
fn header(frame: &[u8]) -> Header {
    Header::decode(&frame[1..]).expect("an SFrame header").0
}

fn drain(events: &Receiver<Event>, seen: &mut Vec<Event>) {
    seen.extend(events.try_iter());
}

#[test]
fn a_restarted_upstream_keeps_the_sframe_counter_going_under_the_same_key() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut session = Session::new("key", SESSION, SessionConfig { server_url: url, ..SessionConfig::default() });
    let events = session.events().unwrap();
    session.set_encryption_secret(SECRET).unwrap();
    session.connect("token").unwrap();

    let (tcp, _) = listener.accept().unwrap();
    let mut sig = Sig(tungstenite::accept(tcp).expect("WebSocket upgrade"));
    sig.0.get_ref().set_read_timeout(Some(Duration::from_millis(2))).unwrap();
    sig.expect("connect");
    sig.send(json!({
        "type": "welcome", "v": 1, "session_id": SESSION, "connection_id": "c1", "resume_token": "r",
        "role": "publisher", "connection_data": null, "media_mode": "routed", "archive_mode": "manual",
        "e2ee": true, "cipher_suite": 6, "heartbeat_interval_ms": 10000, "heartbeat_timeout_ms": 30000,
        "resume_window_ms": 20000, "connections": [], "streams": [], "complete": true,
    }));
    let mut seen = Vec::new();
    let end = Instant::now() + WAIT;
    while !seen.iter().any(|e| matches!(e, Event::Connected { .. })) {
        assert!(Instant::now() < end, "not connected: {seen:?}");
        drain(&events, &mut seen);
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = session.publish(PublisherSettings::with_pattern("moving", 160, 120, 15)).unwrap();
    let publish = sig.expect("publish");
    let (mut a, answer) = Router::answer(publish["sdp_offer"].as_str().expect("routed publish offer"));
    sig.send(json!({"type": "ack", "id": publish["id"], "stream_id": "st1", "sdp_answer": answer}));
    a.collect(&mut sig, 40);

    // Router A dies (it is simply never driven again); the server asks for a restart.
    sig.send(json!({"type": "media_restart", "seq": 1, "stream_id": "st1"}));
    let renegotiate = sig.expect("renegotiate");
    assert_eq!(renegotiate["stream_id"], "st1", "{renegotiate}");
    assert!(renegotiate.get("subscription_id").is_none(), "{renegotiate}");
    let (mut b, answer) = Router::answer(renegotiate["sdp_offer"].as_str().expect("a new offer"));
    assert_ne!(b.local, a.local);
    sig.send(json!({"type": "ack", "id": renegotiate["id"], "sdp_answer": answer}));
    b.collect(&mut sig, 40);

    // The same media_restart again (a replay after another resume can repeat it): the server has
    // no restart pending and refuses; the connection to router B stays and media goes on.
    sig.send(json!({"type": "media_restart", "seq": 2, "stream_id": "st1"}));
    let again = sig.expect("renegotiate");
    sig.send(json!({"type": "error", "id": again["id"], "code": "bad_request",
        "message": "no media restart is pending for this peer connection"}));
    b.collect(&mut sig, 80);

    let before: Vec<Header> = a.audio.iter().map(|f| header(f)).collect();
    let after: Vec<Header> = b.audio[..40].iter().map(|f| header(f)).collect();
    let (last, first) = (before.last().unwrap(), after.first().unwrap());
    eprintln!("router A: KID {} counters {}..={}", before[0].kid, before[0].ctr, last.ctr);
    eprintln!("router B: KID {} counters {}..={}", first.kid, first.ctr, after.last().unwrap().ctr);
    assert!(before.iter().chain(&after).all(|h| h.kid == last.kid), "one KID throughout");
    assert!(first.ctr > last.ctr, "the counter restarted: {} after {}", first.ctr, last.ctr);
    assert!(after.windows(2).all(|w| w[1].ctr > w[0].ctr), "counters increase on router B");

    // One subscriber's decryptor, fed from A and then from B, accepts all with no mismatch.
    let secret = EncryptionSecret::new(SECRET).unwrap();
    let mut ring = KeyRing::new(umbra_e2ee::CipherSuite::from_id(6).unwrap());
    let now = Instant::now();
    ring.set_base_key(BaseKey::derive(&secret, SESSION), now);
    let mut rx = StreamDecryptor::new(Codec::Opus);
    let mut failures = 0;
    for f in a.audio.iter().chain(&b.audio) {
        if rx.decrypt(&ring, f, now).is_err() {
            failures += 1;
        }
    }
    let mut e2ee_events = Vec::new();
    while let Some(e) = rx.poll_event() {
        e2ee_events.push(e);
    }
    assert_eq!(failures, 0);
    assert!(!e2ee_events.iter().any(|e| matches!(e, E2eeEvent::EncryptionSecretMismatch)), "{e2ee_events:?}");

    drain(&events, &mut seen);
    let bad: Vec<&Event> = seen
        .iter()
        .filter(|e| {
            matches!(e, Event::Error(_) | Event::Disconnected { .. })
                || matches!(e, Event::Publisher { event: PublisherEvent::Error(_) | PublisherEvent::Destroyed, .. })
        })
        .collect();
    assert!(bad.is_empty(), "{bad:?}");
    let connected = seen
        .iter()
        .filter(
            |e| matches!(e, Event::Publisher { publisher, event: PublisherEvent::MediaConnected } if *publisher == pid),
        )
        .count();
    assert_eq!(connected, 1, "the move is not news to the app: {seen:?}");
    drop(session);
}
