//! End-to-end encrypted signals (docs/e2ee-protocol.md §12) against a real `umbra serve`:
//! native clients with the same secret get the plain signal marked encrypted, another secret
//! gets the documented failure and no plaintext, REST signals arrive marked not encrypted, and
//! signals injected over a raw signaling socket (re-attributed, replayed, tampered) are
//! rejected with their reason. A raw participant without the secret is the tap: it receives
//! exactly what the server relays, and that never contains the plaintext (in a session without
//! E2EE the same tap does read it, which shows the check can fail).

mod support;

use std::net::TcpStream;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::rest::AppServer;
use support::server::Server;
use tungstenite::{Message, WebSocket};
use umbra_client::{ClientError, Event, Session, SessionConfig};
use umbra_e2ee::{BaseKey, EncryptionSecret, SIGNAL_WIRE_TYPE, SignalSealer};
use umbra_protocol::{ClientMessage, PROTOCOL_VERSION, ServerFrame, ServerMessage};

const SECRET: &str = "correct horse battery staple";
const OTHER_SECRET: &str = "a different secret altogether";
/// Distinctive enough that finding it anywhere means the plaintext leaked.
const PLAINTEXT: &str = "the quarterly numbers are 4711 and nobody may know";
const TYPE: &str = "confidential-chat-type";
const WAIT: Duration = Duration::from_secs(20);

fn join(app: &AppServer, session_id: &str, secret: Option<&str>) -> (Session, Receiver<Event>, String) {
    let config = SessionConfig { server_url: app.url(), ..SessionConfig::default() };
    let mut s = Session::new(&app.api_key, session_id, config);
    let events = s.events().expect("events");
    if let Some(secret) = secret {
        s.set_encryption_secret(secret).expect("secret");
    }
    s.connect(&app.token(session_id, "publisher", "")).expect("connect");
    let id = match next(&events, "Connected", |e| matches!(e, Event::Connected { .. })) {
        Event::Connected { connection_id, .. } => connection_id,
        _ => unreachable!(),
    };
    (s, events, id)
}

/// The next event `pred` accepts, within [`WAIT`]; every signal event passed over on the way
/// must not carry the plaintext.
fn next(events: &Receiver<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let end = Instant::now() + WAIT;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(Event::Signal { data, encrypted: false, .. }) if data.contains(PLAINTEXT) => {
                panic!("plaintext delivered as not encrypted while waiting for {what}")
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no {what} within {WAIT:?}");
}

fn signal_from<'a>(from: &'a str) -> impl Fn(&Event) -> bool + 'a {
    move |e| matches!(e, Event::Signal { from: Some(f), .. } | Event::SignalDecryptionFailed { from: Some(f), .. } if f == from)
}

/// A participant that speaks signaling v1 itself, with `umbra-protocol`'s types: no SDK, no
/// secret unless the test seals for it. Keeps every text the server sent it.
struct Raw {
    ws: WebSocket<TcpStream>,
    connection_id: String,
    texts: Vec<String>,
}

impl Raw {
    fn join(app: &AppServer, session_id: &str) -> Raw {
        let stream = TcpStream::connect(&app.addr).expect("tcp");
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let (ws, _) = tungstenite::client(format!("ws://{}/v1/signaling", app.addr), stream).expect("ws");
        let mut raw = Raw { ws, connection_id: String::new(), texts: Vec::new() };
        let token = app.token(session_id, "publisher", "raw");
        raw.send(&ClientMessage::Connect { v: PROTOCOL_VERSION, token, session_id: None });
        raw.connection_id = match raw.wait("welcome", |m| matches!(m, ServerMessage::Welcome { .. })) {
            ServerMessage::Welcome { connection_id, .. } => connection_id,
            _ => unreachable!(),
        };
        raw
    }

    fn send(&mut self, msg: &ClientMessage) {
        self.ws.send(Message::text(serde_json::to_string(msg).unwrap())).expect("send");
    }

    fn signal(&mut self, signal_type: &str, data: &str) {
        self.send(&ClientMessage::Signal {
            id: None,
            to: None,
            signal_type: Some(signal_type.into()),
            data: data.into(),
        });
    }

    /// Reads until a message `pred` accepts (answering nothing: the test is short next to the
    /// heartbeat timeout).
    fn wait(&mut self, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        let end = Instant::now() + WAIT;
        while Instant::now() < end {
            match self.ws.read() {
                Ok(Message::Text(t)) => {
                    self.texts.push(t.to_string());
                    if let Ok(f) = serde_json::from_str::<ServerFrame>(&t)
                        && pred(&f.message)
                    {
                        return f.message;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("raw socket: {e}"),
            }
        }
        panic!("raw participant saw no {what}");
    }

    /// The `data` of the next signal from `from`.
    fn signal_data_from(&mut self, from: &str) -> (String, String) {
        match self.wait("signal", |m| matches!(m, ServerMessage::Signal { from: Some(f), .. } if f == from)) {
            ServerMessage::Signal { signal_type, data, .. } => (signal_type, data),
            _ => unreachable!(),
        }
    }
}

#[test]
fn e2ee_signals_against_a_real_server() {
    let server = Server::start(&[]);
    let app = server.e2ee_project("signals");
    let sid = app.create_e2ee_session().expect("e2ee session");

    let (alice, _alice_events, alice_id) = join(&app, &sid, Some(SECRET));
    let (_bob, bob, _) = join(&app, &sid, Some(SECRET));
    let (_carol, carol, _) = join(&app, &sid, Some(OTHER_SECRET));
    let (dave, dave_events, _) = join(&app, &sid, None);
    let mut tap = Raw::join(&app, &sid);

    // Same secret: the plain signal, marked encrypted, from alice.
    alice.send_signal(None, TYPE, PLAINTEXT).expect("send");
    match next(&bob, "alice's signal", signal_from(&alice_id)) {
        Event::Signal { signal_type, data, encrypted, .. } => {
            assert_eq!((signal_type.as_str(), data.as_str(), encrypted), (TYPE, PLAINTEXT, true));
        }
        other => panic!("bob: {other:?}"),
    }
    // Another secret: the documented failure, no plaintext.
    match next(&carol, "alice's signal", signal_from(&alice_id)) {
        Event::SignalDecryptionFailed { error, .. } => assert_eq!(error, ClientError::EncryptionSecretMismatch),
        other => panic!("carol got {other:?}"),
    }
    // No secret: cannot send (never in the clear), cannot read.
    assert_eq!(dave.send_signal(None, "chat", "x"), Err(ClientError::EncryptionSecretMissing));
    match next(&dave_events, "alice's signal", signal_from(&alice_id)) {
        Event::SignalDecryptionFailed { error, .. } => assert_eq!(error, ClientError::EncryptionSecretMissing),
        other => panic!("dave got {other:?}"),
    }
    // The tap got what the server relays: the wire type, base64url, no plaintext.
    let (wire_type, wire) = tap.signal_data_from(&alice_id);
    assert_eq!(wire_type, SIGNAL_WIRE_TYPE);
    assert!(wire.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "base64url: {wire}");

    // The app server's REST signal: delivered, marked not end-to-end encrypted.
    app.signal(&sid, "from-app", "hello from the app server").expect("REST signal");
    match next(&bob, "the REST signal", |e| matches!(e, Event::Signal { from: None, .. })) {
        Event::Signal { signal_type, data, encrypted, .. } => {
            assert_eq!(
                (signal_type.as_str(), data.as_str(), encrypted),
                ("from-app", "hello from the app server", false)
            );
        }
        _ => unreachable!(),
    }

    // Alice's sealed signal sent again by someone else: bound to alice, so it fails.
    let tap_id = tap.connection_id.clone();
    tap.signal(SIGNAL_WIRE_TYPE, &wire);
    match next(&bob, "the re-attributed signal", signal_from(&tap_id)) {
        Event::SignalDecryptionFailed { error, .. } => assert_eq!(error, ClientError::EncryptionSecretMismatch),
        other => panic!("a signal re-sent under another sender was accepted: {other:?}"),
    }

    // The raw participant seals with the secret for itself: accepted (so the injection path is
    // sound), then the same bytes again are a replay, and a flipped bit is rejected.
    let base = BaseKey::derive(&EncryptionSecret::new(SECRET).unwrap(), &sid);
    let mut sealer = SignalSealer::new(&base, &tap_id).unwrap();
    let own = sealer.seal(&sid, "raw", "sealed by the raw participant").unwrap();
    tap.signal(SIGNAL_WIRE_TYPE, &own);
    match next(&bob, "the raw participant's signal", signal_from(&tap_id)) {
        Event::Signal { data, encrypted: true, .. } => assert_eq!(data, "sealed by the raw participant"),
        other => panic!("{other:?}"),
    }
    tap.signal(SIGNAL_WIRE_TYPE, &own);
    match next(&bob, "the replay", signal_from(&tap_id)) {
        Event::SignalDecryptionFailed { error, .. } => {
            assert!(matches!(error, ClientError::ReplayedSignal { ctr: 0, .. }), "{error:?}")
        }
        other => panic!("a replayed signal was accepted: {other:?}"),
    }
    // One base64url character 20 from the end: six bits of ciphertext, before the 10-byte tag.
    let mut chars: Vec<char> = sealer.seal(&sid, "raw", "tampered by the tap in transit").unwrap().chars().collect();
    let at = chars.len() - 20;
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    tap.signal(SIGNAL_WIRE_TYPE, &chars.into_iter().collect::<String>());
    match next(&bob, "the tampered signal", signal_from(&tap_id)) {
        Event::SignalDecryptionFailed { error, .. } => assert_eq!(error, ClientError::EncryptionSecretMismatch),
        other => panic!("a tampered signal was accepted: {other:?}"),
    }
    tap.signal(SIGNAL_WIRE_TYPE, "definitely not base64url!");
    match next(&bob, "the malformed signal", signal_from(&tap_id)) {
        Event::SignalDecryptionFailed { error, .. } => {
            assert!(matches!(error, ClientError::DecryptionInternalError(_)), "{error:?}")
        }
        other => panic!("{other:?}"),
    }

    // Nothing the server relayed to the tap, and nothing it logged, holds the plaintext.
    tap.wait(
        "its own last signal",
        |m| matches!(m, ServerMessage::Signal { data, .. } if data.starts_with("definitely")),
    );
    assert!(tap.texts.iter().any(|t| t.contains(SIGNAL_WIRE_TYPE)), "the tap saw the encrypted signal");
    for t in &tap.texts {
        assert!(!t.contains(PLAINTEXT) && !t.contains(TYPE) && !t.contains("tampered by"), "relayed in the clear: {t}");
    }
    let log = server.log();
    assert!(!log.contains(PLAINTEXT) && !log.contains(TYPE), "the server logged the plaintext");
}

#[test]
fn signals_in_a_session_without_e2ee_are_plain_and_the_tap_reads_them() {
    let server = Server::start(&[]);
    let app = server.project("plain-signals");
    let sid = app.create_session(false).expect("session");
    let (alice, _a, alice_id) = join(&app, &sid, None);
    let (_bob, bob, _) = join(&app, &sid, Some(SECRET));
    let mut tap = Raw::join(&app, &sid);
    alice.send_signal(None, "chat", "in the clear").expect("send");
    match next(&bob, "alice's signal", signal_from(&alice_id)) {
        Event::Signal { signal_type, data, encrypted, .. } => {
            assert_eq!((signal_type.as_str(), data.as_str(), encrypted), ("chat", "in the clear", false));
        }
        other => panic!("{other:?}"),
    }
    let (ty, data) = tap.signal_data_from(&alice_id);
    assert_eq!((ty.as_str(), data.as_str()), ("chat", "in the clear"), "without E2EE the server reads signals");
}
