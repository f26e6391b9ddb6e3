//! Simulcast, layer choice and active speakers (issue 13).
//!
//! The publisher's side is pinned against a scripted signaling server and a stand-in router
//! made of str0m (the same library the real router uses) on loopback UDP: the offer's rids,
//! frames arriving on each rid, `layers_wanted` pausing encoders, per-rid key frame requests.
//! That part needs no router feature. The rest runs against a real `umbra serve`, end-to-end
//! encrypted: a subscriber decodes a simulcast stream, and what needs the router's layer choice
//! and speaker detection (docs/signaling.md § set_video_preference, § Events).

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::media::{KeyframeRequestKind, Mid, Rid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Input, Output, Rtc};
use support::client::Client;
use support::rest::AppServer;
use support::server::Server;
use tungstenite::{Message, WebSocket};
use umbra_client::media::pattern::Tone;
use umbra_client::{
    ClientError, Event, PublishOptions, PublisherEvent, PublisherSettings, PublisherStats, Session, SessionConfig,
    SubscriberEvent, ToneCapturer, VideoDimensions,
};
use umbra_protocol::{AckBody, ArchiveMode, ClientMessage, MediaMode, Role, ServerFrame, ServerMessage};

const SECRET: &str = "correct horse battery staple";
const T: Duration = Duration::from_secs(10);

// ------------------------------------------------------------------ scripted server + str0m

/// A signaling server that says what each test needs.
struct Fake {
    ws: WebSocket<TcpStream>,
    seq: u64,
}

impl Fake {
    /// A routed, end-to-end encrypted session joined by a client with the right secret.
    fn start() -> (Fake, Session, Receiver<Event>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let mut session = Session::new("key", "sid", SessionConfig { server_url: url, ..SessionConfig::default() });
        let events = session.events().unwrap();
        session.set_encryption_secret(SECRET).unwrap();
        session.connect("token").unwrap();
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(Some(T)).unwrap();
        let mut fake = Fake { ws: tungstenite::accept(stream).unwrap(), seq: 0 };
        assert!(matches!(fake.recv(), ClientMessage::Connect { .. }));
        fake.send(ServerMessage::Welcome {
            v: 1,
            session_id: "sid".into(),
            connection_id: "me".into(),
            resume_token: "r".into(),
            role: Role::Publisher,
            connection_data: None,
            media_mode: MediaMode::Routed,
            archive_mode: ArchiveMode::Manual,
            e2ee: true,
            cipher_suite: Some(umbra_e2ee::CipherSuite::default().id()),
            heartbeat_interval_ms: 10_000,
            heartbeat_timeout_ms: 30_000,
            resume_window_ms: 20_000,
            connections: vec![],
            streams: vec![],
            complete: true,
        });
        let deadline = Instant::now() + T;
        while !events.recv_timeout(T).is_ok_and(|e| matches!(e, Event::Connected { .. })) {
            assert!(Instant::now() < deadline, "never connected");
        }
        (fake, session, events)
    }

    fn send(&mut self, message: ServerMessage) {
        let seq = message.is_event().then(|| {
            self.seq += 1;
            self.seq
        });
        let text = serde_json::to_string(&ServerFrame { seq, message }).unwrap();
        self.ws.send(Message::text(text)).unwrap();
    }

    fn recv(&mut self) -> ClientMessage {
        loop {
            match self.ws.read().expect("a client message") {
                Message::Text(t) => match serde_json::from_str::<ClientMessage>(t.as_str()).unwrap() {
                    ClientMessage::Ping { .. } => continue,
                    m => return m,
                },
                _ => continue,
            }
        }
    }
}

/// The router's part, played by str0m: answers the publisher's offer and receives its media.
struct StandIn {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    video: Option<Mid>,
    /// Frames received per rid (`"-"` for none).
    frames: HashMap<String, u64>,
    /// The RFC 6464 level of each audio frame (`None`: the packet had none).
    audio_levels: Vec<Option<i8>>,
}

impl StandIn {
    fn new() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let local = socket.local_addr().unwrap();
        let mut rtc = Rtc::builder().set_stats_interval(None).build(Instant::now());
        rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
        Self { rtc, socket, local, video: None, frames: HashMap::new(), audio_levels: Vec::new() }
    }

    fn answer(&mut self, offer: &str) -> String {
        let offer = SdpOffer::from_sdp_string(offer).unwrap();
        self.rtc.sdp_api().accept_offer(offer).unwrap().to_sdp_string()
    }

    /// Runs the connection for `d`.
    fn run(&mut self, d: Duration) {
        let end = Instant::now() + d;
        let mut buf = vec![0u8; 2000];
        loop {
            let timeout = loop {
                match self.rtc.poll_output().unwrap() {
                    Output::Transmit(t) => {
                        let _ = self.socket.send_to(&t.contents, t.destination);
                    }
                    Output::Timeout(t) => break t,
                    Output::Event(str0m::Event::MediaAdded(m)) => {
                        self.video = Some(m.mid).filter(|_| m.kind.is_video()).or(self.video)
                    }
                    Output::Event(str0m::Event::MediaData(m)) => {
                        if m.params.spec().codec.is_video() {
                            let rid = m.rid.map_or("-".to_string(), |r| r.to_string());
                            *self.frames.entry(rid).or_default() += 1;
                        } else {
                            self.audio_levels.push(m.ext_vals.audio_level);
                        }
                    }
                    Output::Event(_) => {}
                }
            };
            let now = Instant::now();
            if now >= end {
                return;
            }
            let wait = timeout.min(end).saturating_duration_since(now).max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(wait)).unwrap();
            let input = match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => match Receive::new(Protocol::Udp, from, self.local, &buf[..n]) {
                    Ok(r) => Input::Receive(Instant::now(), r),
                    Err(_) => continue,
                },
                Err(_) => Input::Timeout(Instant::now()),
            };
            self.rtc.handle_input(input).unwrap();
        }
    }

    fn request_key_frame(&mut self, rid: &str) {
        let mid = self.video.expect("video media");
        let mut w = self.rtc.writer(mid).unwrap();
        w.request_keyframe(Some(Rid::from(rid)), KeyframeRequestKind::Pli).unwrap();
    }
}

fn layer<'a>(stats: &'a PublisherStats, rid: &str) -> &'a umbra_client::LayerStats {
    stats.layers.iter().find(|l| l.rid.as_deref() == Some(rid)).unwrap_or_else(|| panic!("no layer {rid}: {stats:?}"))
}

fn drain(events: &Receiver<Event>) -> Vec<Event> {
    events.try_iter().collect()
}

/// The publisher's whole simulcast path without a router feature: offer, layers on the wire,
/// `layers_wanted`, per-rid key frames.
#[test]
fn simulcast_layers_are_offered_sent_paused_and_resumed() {
    let (mut fake, session, events) = Fake::start();
    let mut stand_in = StandIn::new();
    let publisher = session.publish(PublisherSettings::with_pattern("camera", 640, 360, 30)).unwrap();
    let (id, stream, offer) = match fake.recv() {
        ClientMessage::Publish { id: Some(id), stream, sdp_offer: Some(offer) } => (id, stream, offer),
        other => panic!("expected a routed publish, got {other:?}"),
    };
    assert_eq!(stream.video_dimensions, Some(VideoDimensions { width: 640, height: 360 }));
    // Smallest first (docs/signaling.md § Simulcast layers); each rid declared for sending.
    assert!(offer.contains("a=simulcast:send q;h;f"), "{offer}");
    for rid in ["q", "h", "f"] {
        assert!(offer.contains(&format!("a=rid:{rid} send")), "{rid}: {offer}");
    }
    let answer = stand_in.answer(&offer);
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Published { stream_id: "s1".into(), sdp_answer: Some(answer) },
    });

    // Every layer arrives, each as its own RTP stream.
    stand_in.run(Duration::from_secs(3));
    for rid in ["q", "h", "f"] {
        let n = stand_in.frames.get(rid).copied().unwrap_or(0);
        assert!(n >= 30, "{rid}: {n} frames in 3 s ({:?})", stand_in.frames);
    }
    // The default tone (a 440 Hz sine of peak 0.3) is at -13.5 dBov, sent with each Opus frame.
    let levels = &stand_in.audio_levels;
    assert!(levels.len() >= 100, "{} audio frames", levels.len());
    assert!(levels.iter().all(|l| matches!(l, Some(-14..=-13))), "{:?}", &levels[..10]);
    let stats = session.publisher_stats(publisher);
    assert_eq!(
        stats.layers.iter().map(|l| (l.rid.clone().unwrap(), l.width, l.height)).collect::<Vec<_>>(),
        [("q".to_string(), 160, 90), ("h".to_string(), 320, 180), ("f".to_string(), 640, 360)]
    );

    // Only "q" wanted: the others stop being encoded (and sent).
    fake.send(ServerMessage::LayersWanted { stream_id: "s1".into(), rids: vec!["q".into()] });
    stand_in.run(Duration::from_millis(500));
    let before = session.publisher_stats(publisher);
    let frames_before = stand_in.frames.clone();
    stand_in.run(Duration::from_secs(2));
    let after = session.publisher_stats(publisher);
    assert!(layer(&after, "h").paused && layer(&after, "f").paused && !layer(&after, "q").paused);
    for rid in ["h", "f"] {
        assert_eq!(layer(&after, rid).frames_encoded, layer(&before, rid).frames_encoded, "{rid} still encoded");
        assert_eq!(stand_in.frames.get(rid), frames_before.get(rid), "{rid} still sent");
    }
    let q_encoded = layer(&after, "q").frames_encoded - layer(&before, "q").frames_encoded;
    assert!(q_encoded >= 45, "q: {q_encoded} frames in 2 s");
    let seen = drain(&events);
    assert!(
        seen.iter().any(|e| matches!(e, Event::Publisher { event: PublisherEvent::LayersWanted { rids }, .. }
            if rids == &["q".to_string()])),
        "{seen:?}"
    );

    // "f" back: it starts with a key frame and reaches the router again.
    let f_keys = layer(&after, "f").key_frames;
    fake.send(ServerMessage::LayersWanted { stream_id: "s1".into(), rids: vec!["q".into(), "f".into()] });
    stand_in.run(Duration::from_secs(1));
    let resumed = session.publisher_stats(publisher);
    assert!(!layer(&resumed, "f").paused && layer(&resumed, "h").paused);
    assert_eq!(layer(&resumed, "f").key_frames, f_keys + 1, "a resumed layer starts with a key frame");
    assert!(stand_in.frames["f"] > frames_before["f"] + 15, "{:?}", stand_in.frames);

    // A picture loss on "q" makes a key frame on "q" only.
    let (q_keys, f_keys) = (layer(&resumed, "q").key_frames, layer(&resumed, "f").key_frames);
    stand_in.request_key_frame("q");
    stand_in.run(Duration::from_millis(600));
    let after_pli = session.publisher_stats(publisher);
    assert!(layer(&after_pli, "q").key_frames > q_keys, "{after_pli:?}");
    assert_eq!(layer(&after_pli, "f").key_frames, f_keys, "the other layer made no key frame");

    let all: Vec<Event> = seen.into_iter().chain(drain(&events)).collect();
    let errors: Vec<&Event> = all
        .iter()
        .filter(|e| matches!(e, Event::Error(_) | Event::Publisher { event: PublisherEvent::Error(_), .. }))
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// With simulcast and audio levels turned off: one plain video stream, no levels on the audio.
#[test]
fn simulcast_and_audio_levels_can_be_turned_off() {
    let (mut fake, session, _events) = Fake::start();
    let mut stand_in = StandIn::new();
    let options = PublishOptions::default().with_simulcast(false).with_audio_level(false);
    session.publish_with(PublisherSettings::with_pattern("camera", 640, 360, 30), options).unwrap();
    let (id, offer) = match fake.recv() {
        ClientMessage::Publish { id: Some(id), stream, sdp_offer: Some(offer) } => {
            assert!(!offer.contains("a=simulcast") && !offer.contains("a=rid:"), "{offer}");
            assert_eq!(stream.video_dimensions, Some(VideoDimensions { width: 640, height: 360 }));
            (id, offer)
        }
        other => panic!("expected publish, got {other:?}"),
    };
    let answer = stand_in.answer(&offer);
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Published { stream_id: "s1".into(), sdp_answer: Some(answer) },
    });
    stand_in.run(Duration::from_secs(2));
    assert!(stand_in.frames.get("-").is_some_and(|n| *n >= 20), "{:?}", stand_in.frames);
    assert!(stand_in.audio_levels.len() >= 50 && stand_in.audio_levels.iter().all(Option::is_none));
}

/// Preferences reach the server for a subscription once it exists, are not repeated, and are
/// sent again after a media restart.
#[test]
fn video_preferences_are_sent_once_the_subscription_exists_and_again_after_a_restart() {
    let (mut fake, session, events) = Fake::start();
    fake.send(ServerMessage::StreamCreated {
        stream: umbra_protocol::StreamInfo {
            stream_id: "other".into(),
            connection_id: "c1".into(),
            name: "cam".into(),
            has_audio: true,
            has_video: true,
            video_type: umbra_protocol::VideoType::Camera,
            video_dimensions: Some(VideoDimensions { width: 640, height: 360 }),
            e2ee: true,
            cipher_suite: Some(umbra_e2ee::CipherSuite::default().id()),
            created_at: 0,
            layout_class_list: vec![],
        },
    });
    let deadline = Instant::now() + T;
    while !events.recv_timeout(T).is_ok_and(|e| matches!(e, Event::StreamCreated(_))) {
        assert!(Instant::now() < deadline, "no stream_created");
    }
    let sub = session.subscribe("other").unwrap();
    // Set before the ack: held until the subscription has an id.
    session.set_preferred_resolution(sub, Some((320, 180))).unwrap();
    session.set_preferred_frame_rate(sub, Some(15)).unwrap();
    let id = match fake.recv() {
        ClientMessage::Subscribe { id: Some(id), .. } => id,
        other => panic!("expected subscribe, got {other:?}"),
    };
    fake.send(ServerMessage::Ack {
        id: Some(id),
        body: AckBody::Subscribed { subscription_id: "sub1".into(), sdp_answer: None },
    });
    let (pref_id, first) = match fake.recv() {
        ClientMessage::SetVideoPreference { id: Some(id), subscription_id, preference } => {
            assert_eq!(subscription_id, "sub1");
            (id, preference)
        }
        other => panic!("expected set_video_preference, got {other:?}"),
    };
    assert_eq!(first.max_dimensions, Some(VideoDimensions { width: 320, height: 180 }));
    assert_eq!((first.video, first.max_frame_rate), (true, Some(15)));
    fake.send(ServerMessage::Ack { id: Some(pref_id), body: AckBody::Done {} });
    // Video off: one more request with everything wished so far.
    session.set_subscribe_to_video(sub, false).unwrap();
    let (pref_id, second) = match fake.recv() {
        ClientMessage::SetVideoPreference { id: Some(id), preference, .. } => (id, preference),
        other => panic!("expected set_video_preference, got {other:?}"),
    };
    assert!(!second.video && second.max_frame_rate == Some(15) && second.max_dimensions.is_some());
    fake.send(ServerMessage::Ack { id: Some(pref_id), body: AckBody::Done {} });
    // The router reports what it forwards.
    fake.send(ServerMessage::VideoLayerChanged {
        subscription_id: "sub1".into(),
        rid: None,
        temporal_layer: None,
        paused: true,
    });
    // The media moves to another router: a new offer, then the preference again.
    fake.send(ServerMessage::MediaRestart {
        target: umbra_protocol::MediaTarget::Subscription { subscription_id: "sub1".into() },
    });
    match fake.recv() {
        ClientMessage::Renegotiate { .. } => {}
        other => panic!("expected renegotiate, got {other:?}"),
    }
    match fake.recv() {
        ClientMessage::SetVideoPreference { preference, .. } => assert_eq!(preference, second),
        other => panic!("expected the preference again, got {other:?}"),
    }
    fake.send(ServerMessage::ActiveSpeakerChanged {
        stream_id: Some("other".into()),
        connection_id: Some("c1".into()),
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + T;
    while Instant::now() < deadline {
        if let Ok(e) = events.recv_timeout(Duration::from_millis(100)) {
            let done = matches!(e, Event::ActiveSpeakerChanged { .. });
            seen.push(e);
            if done {
                break;
            }
        }
    }
    assert!(
        seen.iter().any(|e| matches!(e, Event::Subscriber { subscriber, event: SubscriberEvent::VideoLayerChanged {
            rid: None, temporal_layer: None, paused: true } } if *subscriber == sub)),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|e| matches!(e, Event::ActiveSpeakerChanged { stream_id: Some(s), connection_id: Some(c) }
        if s == "other" && c == "c1"))
    );
    // An invalid wish is refused on the subscriber, and nothing is sent.
    session.set_preferred_frame_rate(sub, Some(0)).unwrap();
    let deadline = Instant::now() + T;
    loop {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Subscriber { event: SubscriberEvent::Error(ClientError::InvalidArgument(_)), .. }) => break,
            _ => assert!(Instant::now() < deadline, "no error for frame rate 0"),
        }
    }
}

// ------------------------------------------------------------------ real server

impl Client {
    /// No subscriber of this client ever reported a secret mismatch or plain media.
    fn assert_no_mismatch(&self) {
        let bad = self.seen.iter().find(|e| {
            matches!(
                e,
                Event::Subscriber {
                    event: SubscriberEvent::EncryptionSecretMismatch | SubscriberEvent::StreamNotEncrypted,
                    ..
                }
            )
        });
        assert!(bad.is_none(), "{bad:?}");
    }
}

fn widths(events: &[Event]) -> Vec<u32> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Subscriber { event: SubscriberEvent::VideoFrame(f), .. } => Some(f.width),
            _ => None,
        })
        .collect()
}

fn routed_e2ee() -> (Server, AppServer, String) {
    let server = Server::start(&[]);
    let app = server.e2ee_project("simulcast");
    let session_id = app.create_e2ee_session().unwrap();
    (server, app, session_id)
}

/// A 640x360 publisher offers three layers; a subscriber of the real router decodes one of them.
#[test]
fn a_subscriber_decodes_a_simulcast_stream_through_the_real_router() {
    let (_server, app, session_id) = routed_e2ee();
    let mut publisher = Client::new(&app, &session_id, SECRET);
    let pid = publisher.session.publish(PublisherSettings::with_pattern("camera", 640, 360, 30)).unwrap();
    publisher
        .wait(Duration::from_secs(20), |e| matches!(e, Event::Publisher { event: PublisherEvent::MediaConnected, .. }))
        .unwrap_or_else(|| panic!("publisher media never connected: {:?}", publisher.seen));
    let mut sub = Client::new(&app, &session_id, SECRET);
    let stream = sub.stream_ids(1).remove(0);
    let known = sub.seen.iter().find_map(|e| match e {
        Event::StreamCreated(s) => s.video_dimensions,
        _ => None,
    });
    assert_eq!(known, Some(VideoDimensions { width: 640, height: 360 }), "declared video_dimensions");
    sub.session.subscribe(&stream).unwrap();
    sub.wait(Duration::from_secs(20), |e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. }))
        .unwrap_or_else(|| panic!("no picture: {:?}", sub.seen));
    let start = sub.seen.len();
    sub.wait(Duration::from_secs(3), |_| false);
    let w = widths(&sub.seen[start..]);
    assert!(w.len() >= 60, "{} pictures in 3 s", w.len());
    assert!(w.iter().all(|w| [160, 320, 640].contains(w)), "pictures of a layer's size: {w:?}");
    let stats = publisher.session.publisher_stats(pid);
    assert_eq!(stats.layers.iter().map(|l| l.rid.clone().unwrap()).collect::<Vec<_>>(), ["q", "h", "f"]);
    sub.assert_no_mismatch();
}

/// Needs the router's layer choice: with a preference of 320x180 the router forwards the "h"
/// layer (the smallest at least that large) and says so.
#[test]
fn a_preferred_resolution_gets_the_matching_layer() {
    let (_server, app, session_id) = routed_e2ee();
    let publisher = Client::new(&app, &session_id, SECRET);
    publisher.session.publish(PublisherSettings::with_pattern("camera", 640, 360, 30)).unwrap();
    let mut sub = Client::new(&app, &session_id, SECRET);
    let stream = sub.stream_ids(1).remove(0);
    let id = sub.session.subscribe(&stream).unwrap();
    sub.session.set_preferred_resolution(id, Some((320, 180))).unwrap();
    sub.wait(Duration::from_secs(20), |e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. }))
        .unwrap_or_else(|| panic!("no picture: {:?}", sub.seen));
    let first = sub.seen.len();
    // ROUTER: a 320-wide picture (layer "h") within 5 s.
    let got = sub.wait(
        Duration::from_secs(5),
        |e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(f), .. } if f.width == 320),
    );
    assert!(got.is_some(), "no 320-wide picture within 5 s; widths seen: {:?}", widths(&sub.seen[first..]));
    let start = sub.seen.len();
    sub.wait(Duration::from_secs(2), |_| false);
    let w = widths(&sub.seen[start..]);
    assert!(!w.is_empty() && w.iter().all(|w| *w <= 320), "{w:?}");
    assert!(
        sub.seen.iter().any(|e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoLayerChanged {
            rid: Some(r), paused: false, .. }, .. } if r == "h")),
        "no video_layer_changed to h"
    );
    sub.assert_no_mismatch();
}

/// Needs the router's `layers_wanted`: with its only subscriber wanting the smallest layer,
/// the publisher stops encoding the two others.
#[test]
fn a_publisher_stops_encoding_layers_nobody_wants() {
    let (_server, app, session_id) = routed_e2ee();
    let mut publisher = Client::new(&app, &session_id, SECRET);
    let pid = publisher.session.publish(PublisherSettings::with_pattern("camera", 640, 360, 30)).unwrap();
    let mut sub = Client::new(&app, &session_id, SECRET);
    let stream = sub.stream_ids(1).remove(0);
    let id = sub.session.subscribe(&stream).unwrap();
    sub.session.set_preferred_resolution(id, Some((160, 90))).unwrap();
    sub.wait(Duration::from_secs(20), |e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. }))
        .unwrap_or_else(|| panic!("no picture: {:?}", sub.seen));
    // ROUTER: layers_wanted ["q"] within 5 s.
    let wanted = publisher.wait(Duration::from_secs(5), |e| {
        matches!(e, Event::Publisher { event: PublisherEvent::LayersWanted { rids }, .. } if rids == &["q".to_string()])
    });
    assert!(wanted.is_some(), "no layers_wanted [q]; stats {:?}", publisher.session.publisher_stats(pid));
    std::thread::sleep(Duration::from_millis(300));
    let before = publisher.session.publisher_stats(pid);
    std::thread::sleep(Duration::from_secs(2));
    let after = publisher.session.publisher_stats(pid);
    for rid in ["h", "f"] {
        assert!(layer(&after, rid).paused);
        assert_eq!(layer(&after, rid).frames_encoded, layer(&before, rid).frames_encoded, "{rid}");
    }
    assert!(layer(&after, "q").frames_encoded >= layer(&before, "q").frames_encoded + 45);
    sub.assert_no_mismatch();
}

/// Needs the router's speaker detection: of three publishers, the loudest is named.
#[test]
fn the_loudest_of_three_publishers_is_the_active_speaker() {
    let (_server, app, session_id) = routed_e2ee();
    let mut clients = Vec::new();
    for (name, amplitude) in [("quiet", 0.01), ("loud", 0.5), ("middle", 0.05)] {
        let c = Client::new(&app, &session_id, SECRET);
        let mut tone = Tone::new(440.0);
        tone.amplitude = amplitude;
        let mut settings = PublisherSettings::test_pattern(name);
        settings.video = None;
        settings.audio = Some(Box::new(ToneCapturer(tone)));
        c.session.publish(settings).unwrap();
        clients.push((name, c));
    }
    let mut watcher = Client::new(&app, &session_id, SECRET);
    let mut by_name = HashMap::new();
    for _ in 0..3 {
        match watcher.wait(Duration::from_secs(20), |e| matches!(e, Event::StreamCreated(_))) {
            Some(Event::StreamCreated(s)) => {
                by_name.insert(s.stream_id.clone(), s.name.clone());
            }
            _ => panic!("streams: {by_name:?}"),
        }
    }
    // ROUTER: active_speaker_changed naming "loud" within 10 s.
    let named = watcher.wait(Duration::from_secs(10), |e| {
        matches!(e, Event::ActiveSpeakerChanged { stream_id: Some(s), .. } if by_name.get(s).is_some_and(|n| n == "loud"))
    });
    let speakers: Vec<_> = watcher
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::ActiveSpeakerChanged { stream_id, .. } => Some(stream_id.clone()),
            _ => None,
        })
        .collect();
    assert!(named.is_some(), "the loud stream was never named; changes: {speakers:?}");
}
