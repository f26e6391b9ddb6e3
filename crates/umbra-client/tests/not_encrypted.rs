//! A publisher that declares end-to-end encryption but sends plain VP8/Opus, against a real
//! `umbra serve` (real UDP on loopback, real codecs): its subscribers report *stream not
//! encrypted*, once, never a secret mismatch, and render nothing. For contrast, an honest
//! publisher with another secret in the same session is still a mismatch.
//!
//! The lying publisher is `Session::publish_plaintext_declaring_e2ee`, which exists only with the
//! test feature `testing-plaintext-publisher` (this crate's dev-dependency on itself enables it).

mod support;

use std::collections::HashMap;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::rest::AppServer;
use support::server::Server;
use umbra_client::{
    ClientError, Event, PublisherEvent, PublisherSettings, Session, SessionConfig, Stream, SubscriberEvent,
    SubscriberId,
};

const SECRET: &str = "correct horse battery staple";
const OTHER_SECRET: &str = "a different secret altogether";

fn e2ee_session(app: &AppServer, session_id: &str, data: &str, secret: &str) -> (Session, Receiver<Event>) {
    let config = SessionConfig { server_url: app.url(), ..SessionConfig::default() };
    let mut s = Session::new(&app.api_key, session_id, config);
    let events = s.events().expect("events");
    s.set_encryption_secret(secret).expect("secret");
    s.connect(&app.token(session_id, "publisher", data)).expect("connect");
    (s, events)
}

fn wait_connected(events: &Receiver<Event>) {
    let end = Instant::now() + Duration::from_secs(20);
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(Event::Connected { e2ee, cipher_suite, .. }) => {
                assert!(e2ee, "the session is end-to-end encrypted");
                assert_eq!(cipher_suite, Some(6));
                return;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("not connected within 20 s");
}

/// What one subscriber reported.
#[derive(Default, Debug)]
struct Seen {
    not_encrypted: u32,
    not_encrypted_errors: u32,
    mismatches: u32,
    mismatch_errors: u32,
    pictures: u32,
    audio: u32,
    other_errors: Vec<ClientError>,
}

impl Seen {
    fn take(&mut self, event: SubscriberEvent) {
        match event {
            SubscriberEvent::StreamNotEncrypted => self.not_encrypted += 1,
            SubscriberEvent::Error(ClientError::StreamNotEncrypted) => self.not_encrypted_errors += 1,
            SubscriberEvent::EncryptionSecretMismatch => self.mismatches += 1,
            SubscriberEvent::Error(ClientError::EncryptionSecretMismatch) => self.mismatch_errors += 1,
            SubscriberEvent::VideoFrame(_) => self.pictures += 1,
            SubscriberEvent::AudioFrame(_) => self.audio += 1,
            SubscriberEvent::Error(e) => self.other_errors.push(e),
            _ => {}
        }
    }
}

#[test]
fn a_publisher_that_declares_e2ee_but_sends_plain_media_is_not_encrypted_never_a_mismatch() {
    let server = Server::start(&[]);
    let app = server.e2ee_project("not-encrypted");
    let session_id = app.create_e2ee_session().unwrap();

    let (liar, liar_events) = e2ee_session(&app, &session_id, "liar", SECRET);
    let (other, other_events) = e2ee_session(&app, &session_id, "other-secret", OTHER_SECRET);
    let (mut viewer, viewer_events) = e2ee_session(&app, &session_id, "viewer", SECRET);
    for events in [&liar_events, &other_events, &viewer_events] {
        wait_connected(events);
    }
    let liar_pub =
        liar.publish_plaintext_declaring_e2ee(PublisherSettings::with_pattern("liar", 160, 120, 15)).unwrap();
    let other_pub = other.publish(PublisherSettings::with_pattern("other", 160, 120, 15)).unwrap();

    // Both streams are announced as encrypted with suite 6: the declaration is all a subscriber
    // has before the first frame.
    let mut streams: HashMap<String, Stream> = HashMap::new();
    let end = Instant::now() + Duration::from_secs(20);
    while streams.len() < 2 {
        let left = end.checked_duration_since(Instant::now()).expect("two streams within 20 s");
        if let Ok(Event::StreamCreated(s)) = viewer_events.recv_timeout(left) {
            streams.insert(s.name.clone(), s);
        }
    }
    for s in streams.values() {
        assert!(s.e2ee && s.cipher_suite == Some(6), "{s:?}");
    }
    let liar_sub = viewer.subscribe(&streams["liar"].stream_id).unwrap();
    let other_sub = viewer.subscribe(&streams["other"].stream_id).unwrap();

    // Until both verdicts are in, then 3 s more: each is reported once, however long the
    // plain frames keep coming.
    let mut seen: HashMap<SubscriberId, Seen> = HashMap::new();
    let mut both_since: Option<Instant> = None;
    let end = Instant::now() + Duration::from_secs(30);
    while both_since.is_none_or(|t| t.elapsed() < Duration::from_secs(3)) && Instant::now() < end {
        match viewer_events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Subscriber { subscriber, event }) => seen.entry(subscriber).or_default().take(event),
            Ok(Event::Error(e)) => panic!("session error: {e}"),
            _ => {}
        }
        let verdicts = seen.get(&liar_sub).is_some_and(|s| s.not_encrypted > 0)
            && seen.get(&other_sub).is_some_and(|s| s.mismatches > 0);
        if verdicts && both_since.is_none() {
            both_since = Some(Instant::now());
        }
    }
    let liar_seen = seen.remove(&liar_sub).unwrap_or_default();
    let other_seen = seen.remove(&other_sub).unwrap_or_default();
    eprintln!("lying publisher's subscriber: {liar_seen:?}\nother secret's subscriber: {other_seen:?}");

    let liar_stats = viewer.subscriber_stats(liar_sub);
    assert!(liar_stats.video_frames_received >= 20, "plain frames did arrive: {liar_stats:?}");
    assert_eq!(liar_seen.not_encrypted, 1, "StreamNotEncrypted once");
    assert_eq!(liar_seen.not_encrypted_errors, 1, "Error(StreamNotEncrypted) once");
    assert_eq!((liar_seen.mismatches, liar_seen.mismatch_errors), (0, 0), "never a mismatch");
    assert_eq!((liar_seen.pictures, liar_seen.audio), (0, 0), "nothing of a plain stream is rendered");
    assert_eq!((liar_stats.video_frames_decoded, liar_stats.audio_frames_decoded), (0, 0), "{liar_stats:?}");

    assert_eq!((other_seen.mismatches, other_seen.mismatch_errors), (1, 1), "a different secret is a mismatch");
    assert_eq!((other_seen.not_encrypted, other_seen.not_encrypted_errors), (0, 0), "not 'not encrypted'");
    assert_eq!((other_seen.pictures, other_seen.audio), (0, 0));

    // The publishers themselves noticed nothing wrong: the lie is only visible to receivers.
    for (events, id) in [(&liar_events, liar_pub), (&other_events, other_pub)] {
        let errors: Vec<_> = events
            .try_iter()
            .filter(
                |e| matches!(e, Event::Publisher { publisher, event: PublisherEvent::Error(_) } if *publisher == id),
            )
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
    }
    viewer.disconnect();
    drop((liar, other));
}
