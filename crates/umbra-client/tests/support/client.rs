//! A native SDK client of a real server for tests: a connected `Session`, its events, and
//! everything it has seen, so a test can wait for one event and still look at the others.

use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use umbra_client::{Event, Session, SessionConfig};

use super::rest::AppServer;

pub struct Client {
    pub session: Session,
    pub events: Receiver<Event>,
    pub seen: Vec<Event>,
}

impl Client {
    /// Connected with `secret` (an end-to-end encrypted session's client).
    pub fn new(app: &AppServer, session_id: &str, secret: &str) -> Client {
        Self::connect(app, session_id, Some(secret))
    }

    /// A client of a session without end-to-end encryption.
    pub fn new_plain(app: &AppServer, session_id: &str) -> Client {
        Self::connect(app, session_id, None)
    }

    fn connect(app: &AppServer, session_id: &str, secret: Option<&str>) -> Client {
        let config = SessionConfig { server_url: app.url(), ..SessionConfig::default() };
        let mut session = Session::new(&app.api_key, session_id, config);
        let events = session.events().unwrap();
        if let Some(secret) = secret {
            session.set_encryption_secret(secret).unwrap();
        }
        session.connect(&app.token(session_id, "publisher", "")).unwrap();
        let mut c = Client { session, events, seen: Vec::new() };
        c.wait(Duration::from_secs(20), |e| matches!(e, Event::Connected { .. })).expect("connected");
        c
    }

    /// The first event `pred` accepts within `within`; every event received is kept in `seen`.
    pub fn wait(&mut self, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
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

    /// Every event of the next `d`.
    pub fn collect(&mut self, d: Duration) -> Vec<Event> {
        let start = self.seen.len();
        self.wait(d, |_| false);
        self.seen.split_off(start)
    }

    /// The ids of the next `n` streams to appear.
    pub fn stream_ids(&mut self, n: usize) -> Vec<String> {
        let mut ids = Vec::new();
        for _ in 0..n {
            match self.wait(Duration::from_secs(20), |e| matches!(e, Event::StreamCreated(_))) {
                Some(Event::StreamCreated(s)) => ids.push(s.stream_id),
                _ => panic!("{} of {n} streams appeared", ids.len()),
            }
        }
        ids
    }
}
