//! The SDK against a real `umbra serve` (the umbra-server binary, free loopback ports, a
//! temporary data directory): a late joiner of a session larger than one page of its
//! description, a forced mute that really stops the audio, and the router's media reports.

mod support;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::late_joiner::{self, Joiner, Plan, Seen};
use support::rest::AppServer;
use support::server::Server;
use umbra_client::{
    ClientError, Event, PropertyChanged, PublisherEvent, PublisherId, PublisherSettings, Session, SessionConfig,
    SubscriberEvent,
};

fn session(app: &AppServer, session_id: &str, data: &str) -> (Session, Receiver<Event>) {
    let config = SessionConfig { server_url: app.url(), ..SessionConfig::default() };
    let mut s = Session::new(&app.api_key, session_id, config);
    let events = s.events().expect("events");
    s.connect(&app.token(session_id, "publisher", data)).expect("connect");
    (s, events)
}

/// Takes events until `pred` accepts one (returned), for at most `timeout`; the others are
/// appended to `seen`.
fn wait(
    events: &Receiver<Event>,
    timeout: Duration,
    seen: &mut Vec<Event>,
    pred: impl Fn(&Event) -> bool,
) -> Option<Event> {
    let end = Instant::now() + timeout;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return Some(e),
            Ok(e) => seen.push(e),
            Err(_) => break,
        }
    }
    None
}

/// The Rust SDK as the scenario's joiner.
struct SdkJoiner {
    session: Session,
    events: Receiver<Event>,
    publisher: Option<PublisherId>,
}

fn reason_name(r: impl serde::Serialize) -> String {
    serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
}

impl Joiner for SdkJoiner {
    fn next(&mut self, timeout: Duration) -> Option<Seen> {
        let end = Instant::now() + timeout;
        loop {
            let event = self.events.recv_timeout(end.checked_duration_since(Instant::now())?).ok()?;
            let seen = match event {
                Event::Connected { .. } => Seen::Connected,
                Event::ConnectionCreated(c) => Seen::ConnectionCreated(c.connection_id),
                Event::ConnectionDestroyed { connection, .. } => Seen::ConnectionDropped(connection.connection_id),
                Event::StreamCreated(s) => Seen::StreamReceived(s.stream_id),
                Event::StreamDestroyed { stream, reason } => {
                    Seen::StreamDropped(stream.stream_id, Some(reason_name(reason)))
                }
                Event::StreamPropertyChanged { stream, change } => match change {
                    PropertyChanged::HasAudio { new_value, .. } => Seen::HasAudio(stream.stream_id, new_value),
                    PropertyChanged::HasVideo { new_value, .. } => Seen::HasVideo(stream.stream_id, new_value),
                    other => Seen::Other(format!("{other:?}")),
                },
                Event::Publisher { event: PublisherEvent::StreamCreated { stream_id }, .. } => {
                    Seen::PublisherStream(stream_id)
                }
                // The native SDK has muted the publisher before it reports this; the scenario
                // checks the session saw the audio go off.
                Event::Publisher { event: PublisherEvent::MuteForced { .. }, .. } => {
                    Seen::MuteForced { publish_audio: false }
                }
                Event::Publisher { event: PublisherEvent::Error(e), .. } | Event::Error(e) => {
                    Seen::Error(e.to_string())
                }
                Event::Disconnected { reason } => Seen::Error(format!("disconnected: {reason}")),
                _ => continue,
            };
            return Some(seen);
        }
    }

    fn publish(&mut self) -> Result<(), String> {
        let id = self.session.publish(PublisherSettings::with_pattern("late joiner", 160, 120, 15));
        self.publisher = Some(id.map_err(|e| e.to_string())?);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        if let Some(p) = self.publisher {
            self.session.unpublish(p).map_err(|e| e.to_string())?;
        }
        self.session.disconnect();
        Ok(())
    }
}

#[test]
fn late_joiner_reports_every_connection_and_stream_of_a_paged_session_then_every_change() {
    let server = Server::start(&[]);
    let app = server.project("late-joiner");
    let plan = Plan { connections: 150, streams: 120, patience: Duration::from_secs(30) };
    let outcome = late_joiner::run(&app, plan, |url, api_key, session_id, token| {
        let config = SessionConfig { server_url: url.to_string(), ..SessionConfig::default() };
        let mut session = Session::new(api_key, session_id, config);
        let events = session.events().ok_or("events taken")?;
        session.connect(token).map_err(|e| e.to_string())?;
        Ok(Box::new(SdkJoiner { session, events, publisher: None }))
    })
    .unwrap_or_else(|e| panic!("{e}\n--- server log:\n{}", server.log()));
    eprintln!("Rust SDK late joiner: {outcome:?}");
    // The crowd plus the newcomer; the crowd's streams plus the joiner's own.
    assert_eq!(outcome.connections_reported, 151);
    assert_eq!(outcome.streams_reported, 121);
}

#[test]
fn a_forced_mute_stops_the_audio_a_subscriber_gets_and_unmuting_restores_it() {
    let server = Server::start(&[]);
    let app = server.project("mute");
    let session_id = app.create_session(false).unwrap();
    let (mut publisher, pub_events) = session(&app, &session_id, "publisher");
    let (mut subscriber, sub_events) = session(&app, &session_id, "subscriber");
    let mut seen = Vec::new();
    let t = Duration::from_secs(20);
    wait(&pub_events, t, &mut seen, |e| matches!(e, Event::Connected { .. })).expect("publisher connected");
    let pid = publisher.publish(PublisherSettings::with_pattern("muted", 160, 120, 15)).unwrap();
    let stream_id = match wait(&sub_events, t, &mut seen, |e| matches!(e, Event::StreamCreated(_))) {
        Some(Event::StreamCreated(s)) => s.stream_id,
        other => panic!("no stream: {other:?}"),
    };
    let sid = subscriber.subscribe(&stream_id).unwrap();
    let audio = |s: &Session| s.subscriber_stats(sid).audio_frames_decoded;
    let video = |s: &Session| s.subscriber_stats(sid).video_frames_decoded;
    let end = Instant::now() + t;
    while (audio(&subscriber) < 20 || video(&subscriber) < 5) && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(audio(&subscriber) >= 20 && video(&subscriber) >= 5, "media flows before the mute");

    app.mute_stream(&session_id, &stream_id).unwrap();
    wait(&pub_events, t, &mut seen, |e| {
        matches!(e, Event::Publisher { publisher, event: PublisherEvent::MuteForced { stream_id: s } } if *publisher == pid && *s == stream_id)
    })
    .expect("the publisher is told of the forced mute");
    wait(&sub_events, t, &mut seen, |e| {
        matches!(e, Event::StreamPropertyChanged { stream, change: PropertyChanged::HasAudio { new_value: false, .. } } if stream.stream_id == stream_id && !stream.has_audio)
    })
    .expect("the subscriber sees the stream's audio go off");
    // Frames already on their way arrive; then audio stops while video goes on.
    std::thread::sleep(Duration::from_millis(500));
    let (a0, v0) = (audio(&subscriber), video(&subscriber));
    std::thread::sleep(Duration::from_millis(1500));
    let (a1, v1) = (audio(&subscriber), video(&subscriber));
    eprintln!("muted for 1.5 s: {} audio frames, {} video frames decoded", a1 - a0, v1 - v0);
    assert!(a1 - a0 <= 2, "audio keeps coming after the forced mute: {} frames", a1 - a0);
    assert!(v1 - v0 >= 5, "video stopped too: {} frames", v1 - v0);

    publisher.set_publish_audio(pid, true).unwrap();
    wait(&sub_events, t, &mut seen, |e| {
        matches!(e, Event::StreamPropertyChanged { change: PropertyChanged::HasAudio { new_value: true, .. }, .. })
    })
    .expect("the subscriber sees the audio come back");
    let end = Instant::now() + t;
    while audio(&subscriber) < a1 + 20 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(audio(&subscriber) >= a1 + 20, "audio does not come back after unmuting");

    // Unpublishing ends the subscriber (subscription_ended); the router's media_closed that
    // follows is about a subscription already over and is no error.
    publisher.unpublish(pid).unwrap();
    wait(
        &sub_events,
        t,
        &mut seen,
        |e| matches!(e, Event::Subscriber { subscriber, event: SubscriberEvent::Destroyed } if *subscriber == sid),
    )
    .expect("the subscriber ends with the stream");
    let mut after = Vec::new();
    wait(&sub_events, Duration::from_secs(2), &mut after, |_| false);
    assert!(
        !after
            .iter()
            .any(|e| matches!(e, Event::Subscriber { event: SubscriberEvent::Error(_), .. } | Event::Error(_))),
        "{after:?}"
    );
    assert!(
        !seen.iter().any(|e| matches!(e, Event::Error(_) | Event::Publisher { event: PublisherEvent::Error(_), .. })),
        "{seen:?}"
    );
    subscriber.disconnect();
    publisher.disconnect();
}

#[test]
fn media_failed_from_the_router_is_a_publisher_error() {
    // The router advertises a port where nothing answers (a socket this test holds and never
    // reads): the publisher's ICE checks go nowhere, and after its connect timeout (30 s) the
    // router removes the peer connection and reports media_failed.
    let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let advertise = black_hole.local_addr().unwrap().to_string();
    let server = Server::start(&["--media-advertise", &advertise]);
    let app = server.project("media-failed");
    let session_id = app.create_session(false).unwrap();
    let (mut publisher, events) = session(&app, &session_id, "publisher");
    let mut seen = Vec::new();
    wait(&events, Duration::from_secs(20), &mut seen, |e| matches!(e, Event::Connected { .. })).expect("connected");
    let pid = publisher.publish(PublisherSettings::with_pattern("unreachable", 160, 120, 15)).unwrap();
    let started = Instant::now();
    let failed = wait(
        &events,
        Duration::from_secs(50),
        &mut seen,
        |e| matches!(e, Event::Publisher { publisher, event: PublisherEvent::Error(ClientError::MediaFailed(_)) } if *publisher == pid),
    );
    assert!(failed.is_some(), "no MediaFailed within 50 s: {seen:?}\n--- server log:\n{}", server.log());
    eprintln!("media_failed after {:.1} s: {failed:?}", started.elapsed().as_secs_f64());
    assert!(!seen.iter().any(|e| matches!(e, Event::Error(ClientError::Protocol(_)))), "{seen:?}");
    publisher.disconnect();
}
