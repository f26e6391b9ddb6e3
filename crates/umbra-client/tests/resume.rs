//! Resuming a dropped signaling socket against a real `umbra serve`: each client reaches the
//! server through a TCP proxy that the test cuts (both TCP streams shut, no close frame) while an
//! end-to-end encrypted stream runs from one to the other. The cut client reports
//! `Reconnecting`, retries while the server is unreachable, resumes with its token and receives
//! the events it missed (a signal sent during the cut); media never stops (peer connections have
//! their own sockets) and no encryption mismatch or lost publisher/subscriber appears.

mod support;

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::proxy::Proxy;
use support::rest::AppServer;
use support::server::Server;
use umbra_client::{Event, PublisherEvent, PublisherSettings, Session, SessionConfig, SubscriberEvent, SubscriberId};

const SECRET: &str = "resume keeps the same secret";
const WAIT: Duration = Duration::from_secs(20);

fn join(app: &AppServer, url: String, session_id: &str, data: &str) -> (Session, Receiver<Event>) {
    let config = SessionConfig { server_url: url, ..SessionConfig::default() };
    let mut s = Session::new(&app.api_key, session_id, config);
    let events = s.events().expect("events");
    s.set_encryption_secret(SECRET).expect("secret");
    s.connect(&app.token(session_id, "publisher", data)).expect("connect");
    (s, events)
}

/// Takes events until `pred` accepts one, keeping the others in `seen`; panics after [`WAIT`].
fn expect(events: &Receiver<Event>, seen: &mut Vec<Event>, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let end = Instant::now() + WAIT;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(e) => seen.push(e),
            Err(_) => break,
        }
    }
    panic!("no {what} within {WAIT:?}; seen: {seen:?}");
}

fn drain(events: &Receiver<Event>, seen: &mut Vec<Event>) {
    seen.extend(events.try_iter());
}

/// Waits until `sid` has decoded `more` further video frames.
fn decodes(session: &Session, sid: SubscriberId, more: u64, what: &str) {
    let start = session.subscriber_stats(sid).video_frames_decoded;
    let end = Instant::now() + WAIT;
    while session.subscriber_stats(sid).video_frames_decoded < start + more {
        assert!(Instant::now() < end, "{what}: fewer than {more} frames decoded in {WAIT:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nothing the move may cause: a mismatch, a lost publisher or subscriber, an error, a
/// disconnection, another client seen leaving.
fn assert_clean(who: &str, seen: &[Event]) {
    let bad: Vec<&Event> = seen
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Error(_)
                    | Event::Disconnected { .. }
                    | Event::ConnectionDestroyed { .. }
                    | Event::StreamDestroyed { .. }
                    | Event::Publisher { event: PublisherEvent::Error(_) | PublisherEvent::Destroyed, .. }
                    | Event::Subscriber {
                        event: SubscriberEvent::Error(_)
                            | SubscriberEvent::Destroyed
                            | SubscriberEvent::EncryptionSecretMismatch
                            | SubscriberEvent::StreamNotEncrypted,
                        ..
                    }
            )
        })
        .collect();
    assert!(bad.is_empty(), "{who}: {bad:?}");
}

#[test]
fn a_cut_socket_is_resumed_with_the_missed_events_while_encrypted_media_goes_on() {
    let server = Server::start(&[]);
    let app = server.e2ee_project("resume");
    let session_id = app.create_e2ee_session().unwrap();
    let (pub_proxy, sub_proxy) = (Proxy::start(&server.addr), Proxy::start(&server.addr));
    let (mut publisher, pub_events) = join(&app, pub_proxy.url(), &session_id, "publisher");
    let (mut subscriber, sub_events) = join(&app, sub_proxy.url(), &session_id, "subscriber");
    let (mut pub_seen, mut sub_seen) = (Vec::new(), Vec::new());
    expect(&pub_events, &mut pub_seen, "publisher Connected", |e| matches!(e, Event::Connected { .. }));
    let pid = publisher.publish(PublisherSettings::with_pattern("resumed", 160, 120, 15)).unwrap();
    let stream_id = match expect(&sub_events, &mut sub_seen, "StreamCreated", |e| matches!(e, Event::StreamCreated(_)))
    {
        Event::StreamCreated(s) => s.stream_id,
        _ => unreachable!(),
    };
    let sid = subscriber.subscribe(&stream_id).unwrap();
    decodes(&subscriber, sid, 10, "before the cut");

    // The subscriber's socket dies and the server stays unreachable for a while: the client
    // keeps trying (each attempt refused) while the publisher signals it.
    sub_proxy.hold(true);
    sub_proxy.cut();
    let cut_at = Instant::now();
    expect(&sub_events, &mut sub_seen, "Reconnecting", |e| matches!(e, Event::Reconnecting));
    eprintln!("Reconnecting after {:?}", cut_at.elapsed());
    publisher.send_signal(None, "during-cut", "sent while the subscriber was away").unwrap();
    decodes(&subscriber, sid, 10, "during the cut (media has its own sockets)");
    std::thread::sleep(Duration::from_millis(1500));
    sub_proxy.hold(false);
    let accepted = sub_proxy.accepted();
    expect(&sub_events, &mut sub_seen, "Reconnected", |e| matches!(e, Event::Reconnected));
    eprintln!("Reconnected {:?} after the cut", cut_at.elapsed());
    assert_eq!(sub_proxy.accepted(), accepted + 1, "one socket resumed");
    let signal = expect(
        &sub_events,
        &mut sub_seen,
        "the signal sent during the cut",
        |e| matches!(e, Event::Signal { signal_type, .. } if signal_type == "during-cut"),
    );
    assert!(
        matches!(&signal, Event::Signal { data, encrypted: true, .. } if data == "sent while the subscriber was away"),
        "{signal:?}"
    );
    decodes(&subscriber, sid, 10, "after the subscriber resumed");
    // Requests work again on the resumed socket.
    subscriber.send_signal(None, "after-resume", "hello").unwrap();
    expect(
        &pub_events,
        &mut pub_seen,
        "a signal over the resumed socket",
        |e| matches!(e, Event::Signal { signal_type, encrypted: true, .. } if signal_type == "after-resume"),
    );

    // The publisher's socket dies (resumed at once): its stream and encrypted media go on.
    pub_proxy.cut();
    expect(&pub_events, &mut pub_seen, "publisher Reconnecting", |e| matches!(e, Event::Reconnecting));
    expect(&pub_events, &mut pub_seen, "publisher Reconnected", |e| matches!(e, Event::Reconnected));
    decodes(&subscriber, sid, 15, "after the publisher resumed");
    std::thread::sleep(Duration::from_millis(500));
    drain(&pub_events, &mut pub_seen);
    drain(&sub_events, &mut sub_seen);
    assert_clean("publisher", &pub_seen);
    assert_clean("subscriber", &sub_seen);
    assert_eq!(subscriber.subscriber_stats(sid).decrypt_failures, 0);
    assert!(pub_seen.iter().any(|e| matches!(e, Event::Publisher { publisher, .. } if *publisher == pid)));
    subscriber.disconnect();
    publisher.disconnect();
}

#[test]
fn a_resume_after_the_window_ends_the_session() {
    let server = Server::start(&["--resume-window-secs", "2"]);
    let app = server.e2ee_project("resume-late");
    let session_id = app.create_e2ee_session().unwrap();
    let proxy = Proxy::start(&server.addr);
    let (_client, events) = join(&app, proxy.url(), &session_id, "late");
    let mut seen = Vec::new();
    expect(&events, &mut seen, "Connected", |e| matches!(e, Event::Connected { .. }));
    proxy.hold(true);
    proxy.cut();
    expect(&events, &mut seen, "Reconnecting", |e| matches!(e, Event::Reconnecting));
    let started = Instant::now();
    let end = expect(&events, &mut seen, "Disconnected", |e| matches!(e, Event::Disconnected { .. }));
    eprintln!("{end:?} after {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(8), "gave up only after {:?}", started.elapsed());
    assert!(!seen.iter().any(|e| matches!(e, Event::Reconnected)), "{seen:?}");
}
