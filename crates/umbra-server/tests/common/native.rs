//! Native clients (umbra-client: real codecs, SFrame) as the cluster tests and the failover
//! benchmark drive them: joined with a secret, publishing the test pattern, subscribing, and
//! watched through their decoded-frame counters.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use umbra_client::{Event, PublisherEvent, PublisherSettings, Session, SessionConfig, SubscriberEvent, SubscriberId};

use super::{Project, token};

pub const WAIT: Duration = Duration::from_secs(20);

pub struct Native {
    pub session: Session,
    events: Receiver<Event>,
    pub seen: Vec<Event>,
}

impl Native {
    /// Connects to `url` (a node or the load balancer) with `secret`; waits for `Connected`.
    pub fn join(url: &str, project: &Project, session_id: &str, secret: &str, data: &str) -> Native {
        let config = SessionConfig { server_url: url.to_owned(), ..SessionConfig::default() };
        let mut session = Session::new(&project.key, session_id, config);
        let events = session.events().unwrap();
        session.set_encryption_secret(secret).unwrap();
        session.connect(&token(project, session_id, "publisher", Some(data))).unwrap();
        let mut n = Native { session, events, seen: Vec::new() };
        n.expect("Connected", |e| matches!(e, Event::Connected { .. }));
        n
    }

    /// Reads events until one matches (returned); panics after [`WAIT`].
    pub fn expect(&mut self, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
        let end = Instant::now() + WAIT;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left) {
                Ok(e) if pred(&e) => return e,
                Ok(e) => self.seen.push(e),
                Err(_) => break,
            }
        }
        panic!("no {what} within {WAIT:?}: {:?}", self.seen);
    }

    /// The next event, not kept (for watching many decoded pictures without holding them).
    pub fn next_event(&self, within: Duration) -> Option<Event> {
        self.events.recv_timeout(within).ok()
    }

    /// Everything received so far, into `seen`.
    pub fn drain(&mut self) {
        self.seen.extend(self.events.try_iter());
    }

    /// Publishes the test pattern and tone; waits until its media is connected.
    pub fn publish_pattern(&mut self) {
        self.session.publish(PublisherSettings::test_pattern("camera")).unwrap();
        self.expect("publisher media", |e| matches!(e, Event::Publisher { event: PublisherEvent::MediaConnected, .. }));
    }

    /// Subscribes to the first stream the session announces.
    pub fn subscribe_first(&mut self) -> SubscriberId {
        let known = self.seen.iter().find_map(|e| match e {
            Event::StreamCreated(s) => Some(s.stream_id.clone()),
            _ => None,
        });
        let stream = known.unwrap_or_else(|| match self.expect("a stream", |e| matches!(e, Event::StreamCreated(_))) {
            Event::StreamCreated(s) => s.stream_id,
            _ => unreachable!(),
        });
        self.session.subscribe(&stream).unwrap()
    }

    pub fn decoded(&self, sid: SubscriberId) -> u64 {
        self.session.subscriber_stats(sid).video_frames_decoded
    }

    /// How long until `sid` has decoded `more` frames; `None` if not within `limit`.
    pub fn decoding_again(&self, sid: SubscriberId, more: u64, limit: Duration) -> Option<Duration> {
        let start = Instant::now();
        let from = self.decoded(sid);
        while start.elapsed() < limit {
            if self.decoded(sid) >= from + more {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }

    /// Watches `sid` for `window`: the longest time without a decoded frame, and frames decoded.
    pub fn longest_stall(&self, sid: SubscriberId, window: Duration) -> (Duration, u64) {
        let start = Instant::now();
        let first = self.decoded(sid);
        let (mut last, mut last_change, mut longest) = (first, start, Duration::ZERO);
        while start.elapsed() < window {
            std::thread::sleep(Duration::from_millis(5));
            let now = self.decoded(sid);
            if now != last {
                longest = longest.max(last_change.elapsed());
                (last, last_change) = (now, Instant::now());
            }
        }
        (longest.max(last_change.elapsed()), last - first)
    }

    /// Events the move of a session must never cause, as seen so far.
    pub fn troubles(&self) -> Vec<&Event> {
        self.seen
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
                                | SubscriberEvent::EncryptionSecretMismatch,
                            ..
                        }
                )
            })
            .collect()
    }
}
