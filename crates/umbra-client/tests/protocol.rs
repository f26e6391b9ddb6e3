//! The SDK's handling of every server message, against a scripted server: a loopback WebSocket
//! that sends exactly the `umbra-protocol` values (or the broken texts) each test needs and
//! checks what the SDK sends back. What a real server does is in real_server.rs; this pins the
//! cases a real server does not produce on demand (a media_closed for a live subscription, a
//! message that does not parse, an error code from a newer server).

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};
use umbra_client::{
    ClientError, ErrorCode, Event, PropertyChanged, PublisherEvent, PublisherSettings, Reason, Session, SessionConfig,
    SubscriberEvent, VideoDimensions,
};
use umbra_protocol::{
    AckBody, ArchiveMode, ClientMessage, ConnectionInfo, MediaMode, MediaTarget, PropertyChange, RequestId, Role,
    ServerFrame, ServerMessage, StreamInfo, VideoType,
};

const T: Duration = Duration::from_secs(10);

struct Fake {
    ws: WebSocket<TcpStream>,
    seq: u64,
}

impl Fake {
    /// A session connected to a scripted server that has answered `connect` with nothing yet.
    fn start() -> (Fake, Session, Receiver<Event>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut session = Session::new("key", "sid", SessionConfig { server_url: url, ..SessionConfig::default() });
        let events = session.events().unwrap();
        session.connect("token").unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(T)).unwrap();
        let ws = tungstenite::accept(stream).unwrap();
        let mut fake = Fake { ws, seq: 0 };
        match fake.recv() {
            ClientMessage::Connect { v: 1, token, session_id } => {
                assert_eq!((token.as_str(), session_id.as_deref()), ("token", Some("sid")))
            }
            other => panic!("expected connect, got {other:?}"),
        }
        (fake, session, events)
    }

    fn text(&mut self, t: &str) {
        self.ws.send(Message::text(t)).unwrap();
    }

    /// Sends a message as the server does: events with the next `seq`.
    fn send(&mut self, message: ServerMessage) {
        let seq = message.is_event().then(|| {
            self.seq += 1;
            self.seq
        });
        let text = serde_json::to_string(&ServerFrame { seq, message }).unwrap();
        self.text(&text);
    }

    /// The next client message other than the heartbeat.
    fn recv(&mut self) -> ClientMessage {
        loop {
            match self.ws.read().expect("a client message") {
                Message::Text(t) => match serde_json::from_str::<ClientMessage>(t.as_str()) {
                    Ok(ClientMessage::Ping { .. }) => continue,
                    Ok(m) => return m,
                    Err(e) => panic!("the SDK sent something that is not a ClientMessage ({e}): {t}"),
                },
                _ => continue,
            }
        }
    }

    /// The next client message's request id (a number, as the SDK makes them).
    fn recv_request(&mut self) -> (RequestId, ClientMessage) {
        let m = self.recv();
        let id = m.id().cloned().unwrap_or_else(|| panic!("{} without an id", m.kind()));
        (id, m)
    }

    fn welcome(
        &mut self,
        media_mode: MediaMode,
        connections: Vec<ConnectionInfo>,
        streams: Vec<StreamInfo>,
        complete: bool,
    ) {
        self.send(ServerMessage::Welcome {
            v: 1,
            session_id: "sid".into(),
            connection_id: "me".into(),
            resume_token: "r".into(),
            role: Role::Publisher,
            connection_data: None,
            media_mode,
            archive_mode: ArchiveMode::Manual,
            e2ee: false,
            cipher_suite: None,
            heartbeat_interval_ms: 10_000,
            heartbeat_timeout_ms: 30_000,
            resume_window_ms: 20_000,
            connections,
            streams,
            complete,
        });
    }
}

fn conn(i: usize) -> ConnectionInfo {
    ConnectionInfo { connection_id: format!("c{i}"), data: Some(format!("d{i}")), created_at: i as i64 }
}

fn stream(i: usize) -> StreamInfo {
    StreamInfo {
        stream_id: format!("s{i}"),
        connection_id: format!("c{i}"),
        name: format!("n{i}"),
        has_audio: true,
        has_video: true,
        video_type: VideoType::Camera,
        video_dimensions: None,
        e2ee: false,
        cipher_suite: None,
        created_at: 0,
        layout_class_list: vec![],
    }
}

/// Events until `pred` accepts one (returned); the others are appended to `seen`.
fn until(events: &Receiver<Event>, seen: &mut Vec<Event>, pred: impl Fn(&Event) -> bool) -> Event {
    let end = Instant::now() + T;
    loop {
        let left = end.checked_duration_since(Instant::now()).unwrap_or_else(|| panic!("timed out; saw {seen:?}"));
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(e) => seen.push(e),
            Err(_) => panic!("timed out; saw {seen:?}"),
        }
    }
}

/// Everything that arrives within `d`.
fn drain(events: &Receiver<Event>, d: Duration) -> Vec<Event> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(e) => out.push(e),
            Err(_) => break,
        }
    }
    out
}

fn protocol_errors(events: &[Event]) -> usize {
    events.iter().filter(|e| matches!(e, Event::Error(ClientError::Protocol(_)))).count()
}

#[test]
fn every_page_of_the_session_description_is_reported_once() {
    let (mut fake, _session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, (0..100).map(conn).collect(), (0..100).map(stream).collect(), false);
    fake.send(ServerMessage::Snapshot {
        connections: (100..150).map(conn).collect(),
        streams: vec![],
        complete: false,
    });
    fake.send(ServerMessage::Snapshot {
        connections: vec![],
        streams: (100..120).map(stream).collect(),
        complete: true,
    });
    fake.send(ServerMessage::ConnectionCreated { connection: conn(150) });
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::ConnectionCreated(c) if c.connection_id == "c150"));
    seen.extend(drain(&events, Duration::from_millis(200)));
    assert!(matches!(seen.first(), Some(Event::Connected { connection_id, .. }) if connection_id == "me"), "{seen:?}");
    let connections: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::ConnectionCreated(c) => Some(c.connection_id.clone()),
            _ => None,
        })
        .collect();
    let streams: Vec<_> = seen
        .iter()
        .filter_map(|e| match e {
            Event::StreamCreated(s) => Some(s.stream_id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(connections, (0..150).map(|i| format!("c{i}")).collect::<Vec<_>>());
    assert_eq!(streams, (0..120).map(|i| format!("s{i}")).collect::<Vec<_>>());
    assert_eq!(protocol_errors(&seen), 0);
    assert!(
        seen.iter().any(|e| matches!(e, Event::ConnectionCreated(c) if c.connection_id == "c7" && c.data == "d7")),
        "connection data kept"
    );

    // A connection or stream announced again, or a page after the last, is the server's error:
    // reported, not passed on twice.
    fake.send(ServerMessage::ConnectionCreated { connection: conn(3) });
    fake.send(ServerMessage::StreamCreated { stream: stream(3) });
    fake.send(ServerMessage::Snapshot { connections: vec![], streams: vec![], complete: true });
    let later = drain(&events, Duration::from_millis(300));
    assert_eq!(protocol_errors(&later), 3, "{later:?}");
    assert!(!later.iter().any(|e| matches!(e, Event::ConnectionCreated(_) | Event::StreamCreated(_))), "{later:?}");
}

#[test]
fn messages_that_do_not_parse_are_reported_and_the_session_goes_on() {
    let (mut fake, _session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, vec![], vec![], true);
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::Connected { .. }));
    fake.text("not json");
    fake.text(r#"{"type":"stream_created","seq":1}"#); // a known type without its stream
    fake.text(r#"{"type":"hologram_started","seq":2}"#); // a type from a newer server ...
    fake.text(r#"{"type":"hologram_started","seq":3}"#); // ... is reported once
    fake.send(ServerMessage::Signal { from: None, signal_type: "chat".into(), data: "still here".into() });
    let signal = until(&events, &mut seen, |e| matches!(e, Event::Signal { .. }));
    assert!(matches!(signal, Event::Signal { data, .. } if data == "still here"));
    let problems: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Error(ClientError::Protocol(p)) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(problems.len(), 3, "{seen:?}");
    assert!(problems[0].contains("not a JSON object"), "{problems:?}");
    assert!(problems[1].contains("stream_created"), "{problems:?}");
    assert!(problems[2].contains("hologram_started"), "{problems:?}");
}

#[test]
fn refusals_carry_the_protocol_code_and_codes_from_a_newer_server_are_unrecognized() {
    let (mut fake, session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, vec![], vec![], true);
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::Connected { .. }));
    let pid = session.publish(PublisherSettings::test_pattern("p")).unwrap();
    let (id, publish) = fake.recv_request();
    assert!(matches!(publish, ClientMessage::Publish { sdp_offer: None, .. }), "relayed: no SDP");
    fake.send(ServerMessage::Error { id: Some(id), code: ErrorCode::RoleForbidden, message: "no".into() });
    let e = until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::Error(_), .. }));
    assert_eq!(
        e,
        Event::Publisher {
            publisher: pid,
            event: PublisherEvent::Error(ClientError::Refused { code: ErrorCode::RoleForbidden, message: "no".into() })
        }
    );
    session.send_signal(None, "chat", "hi").unwrap();
    let (id, _) = fake.recv_request();
    let RequestId::Number(n) = id else { panic!("the SDK numbers its requests") };
    fake.text(&format!(r#"{{"type":"error","id":{n},"code":"quota_exceeded","message":"later"}}"#));
    let e = until(&events, &mut seen, |e| matches!(e, Event::Error(_)));
    assert_eq!(e, Event::Error(ClientError::Refused { code: ErrorCode::Unrecognized, message: "later".into() }));
}

#[test]
fn a_refused_handshake_ends_the_session_with_the_code() {
    let (mut fake, _session, events) = Fake::start();
    fake.send(ServerMessage::Error { id: None, code: ErrorCode::TokenExpired, message: "expired".into() });
    let mut seen = Vec::new();
    let e = until(&events, &mut seen, |e| matches!(e, Event::Error(_)));
    assert!(matches!(e, Event::Error(ClientError::Refused { code: ErrorCode::TokenExpired, .. })));
    until(&events, &mut seen, |e| matches!(e, Event::Disconnected { .. }));
}

#[test]
fn a_forced_mute_stops_the_audio_and_tells_the_session_and_the_app() {
    let (mut fake, session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, vec![], vec![], true);
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::Connected { .. }));
    let pid = session.publish(PublisherSettings::test_pattern("p")).unwrap();
    let (id, _) = fake.recv_request();
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Published { stream_id: "mine".into(), sdp_answer: None },
    });
    until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::StreamCreated { .. }, .. }));

    fake.send(ServerMessage::MuteForced { stream_id: "mine".into() });
    let e =
        until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::MuteForced { .. }, .. }));
    assert_eq!(e, Event::Publisher { publisher: pid, event: PublisherEvent::MuteForced { stream_id: "mine".into() } });
    let (id, m) = fake.recv_request();
    assert_eq!(
        m,
        ClientMessage::SetStreamProperty {
            id: Some(id.clone()),
            stream_id: "mine".into(),
            change: PropertyChange::HasAudio(false)
        }
    );
    fake.send(ServerMessage::Ack { id: Some(id), body: AckBody::Done {} });

    // A second mute changes nothing on the wire; unmuting announces the audio again.
    fake.send(ServerMessage::MuteForced { stream_id: "mine".into() });
    until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::MuteForced { .. }, .. }));
    session.set_publish_audio(pid, true).unwrap();
    let (_, m) = fake.recv_request();
    assert!(matches!(m, ClientMessage::SetStreamProperty { change: PropertyChange::HasAudio(true), .. }), "{m:?}");
    // Video off before anything else: the next message is about video.
    session.set_publish_video(pid, false).unwrap();
    let (_, m) = fake.recv_request();
    assert!(matches!(m, ClientMessage::SetStreamProperty { change: PropertyChange::HasVideo(false), .. }), "{m:?}");
    // A mute for a stream no longer published here is nobody's event.
    fake.send(ServerMessage::MuteForced { stream_id: "gone".into() });
    assert!(drain(&events, Duration::from_millis(200)).is_empty());
}

#[test]
fn property_changes_update_the_stream_and_reasons_are_typed() {
    let (mut fake, _session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, vec![conn(1)], vec![stream(1)], true);
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::StreamCreated(_)));
    fake.send(ServerMessage::StreamPropertyChanged {
        stream_id: "s1".into(),
        change: PropertyChanged::HasVideo { old_value: true, new_value: false },
    });
    let dims = VideoDimensions { width: 640, height: 480 };
    fake.send(ServerMessage::StreamPropertyChanged {
        stream_id: "s1".into(),
        change: PropertyChanged::VideoDimensions { old_value: None, new_value: dims },
    });
    until(&events, &mut seen, |e| {
        matches!(e, Event::StreamPropertyChanged { change: PropertyChanged::HasVideo { .. }, .. })
    });
    let e = until(&events, &mut seen, |e| matches!(e, Event::StreamPropertyChanged { .. }));
    let Event::StreamPropertyChanged { stream: s, .. } = e else { unreachable!() };
    assert!(!s.has_video && s.has_audio && s.video_dimensions == Some(dims), "{s:?}");
    // A change for a stream never announced is the server's error.
    fake.send(ServerMessage::StreamPropertyChanged {
        stream_id: "nope".into(),
        change: PropertyChanged::HasAudio { old_value: true, new_value: false },
    });
    fake.send(ServerMessage::StreamDestroyed { stream: stream(1), reason: Reason::ForceDisconnected });
    fake.send(ServerMessage::ConnectionDestroyed { connection: conn(1), reason: Reason::ForceDisconnected });
    let e = until(&events, &mut seen, |e| matches!(e, Event::StreamDestroyed { .. }));
    // The stream as last known (video off), and why it went.
    assert!(matches!(e, Event::StreamDestroyed { stream, reason: Reason::ForceDisconnected } if !stream.has_video));
    let e = until(&events, &mut seen, |e| matches!(e, Event::ConnectionDestroyed { .. }));
    assert!(
        matches!(e, Event::ConnectionDestroyed { connection, reason: Reason::ForceDisconnected } if connection.data == "d1")
    );
    assert_eq!(protocol_errors(&seen), 1, "{seen:?}");
}

#[test]
fn the_routers_media_reports_are_errors_of_the_publisher_or_subscriber_concerned() {
    let (mut fake, session, events) = Fake::start();
    fake.welcome(MediaMode::Relayed, vec![conn(1)], vec![stream(1)], true);
    let mut seen = Vec::new();
    until(&events, &mut seen, |e| matches!(e, Event::StreamCreated(_)));

    let pid = session.publish(PublisherSettings::test_pattern("p")).unwrap();
    let (id, _) = fake.recv_request();
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Published { stream_id: "mine".into(), sdp_answer: None },
    });
    until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::StreamCreated { .. }, .. }));
    fake.send(ServerMessage::MediaFailed {
        target: MediaTarget::Stream { stream_id: "mine".into() },
        message: "ICE timed out".into(),
    });
    let e = until(&events, &mut seen, |e| matches!(e, Event::Publisher { event: PublisherEvent::Error(_), .. }));
    assert_eq!(
        e,
        Event::Publisher {
            publisher: pid,
            event: PublisherEvent::Error(ClientError::MediaFailed("ICE timed out".into()))
        }
    );

    let sid = session.subscribe("s1").unwrap();
    let (id, m) = fake.recv_request();
    assert!(matches!(m, ClientMessage::Subscribe { ref stream_id, .. } if stream_id == "s1"), "{m:?}");
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Subscribed { subscription_id: "sub".into(), sdp_answer: None },
    });
    // The router closing a subscription the SDK still holds: an error, then the end.
    fake.send(ServerMessage::MediaClosed {
        target: MediaTarget::Subscription { subscription_id: "sub".into() },
        message: "StreamEnded".into(),
    });
    let e = until(&events, &mut seen, |e| matches!(e, Event::Subscriber { .. }));
    assert_eq!(
        e,
        Event::Subscriber {
            subscriber: sid,
            event: SubscriberEvent::Error(ClientError::MediaClosed("StreamEnded".into()))
        }
    );
    let e = until(&events, &mut seen, |e| matches!(e, Event::Subscriber { .. }));
    assert_eq!(e, Event::Subscriber { subscriber: sid, event: SubscriberEvent::Destroyed });

    // About a subscription already over (as after subscription_ended): the router confirming
    // the end, not an error.
    fake.send(ServerMessage::MediaClosed {
        target: MediaTarget::Subscription { subscription_id: "sub".into() },
        message: "StreamEnded".into(),
    });
    fake.send(ServerMessage::MediaConnected { target: MediaTarget::Stream { stream_id: "mine".into() } });
    assert!(drain(&events, Duration::from_millis(200)).is_empty());
}
