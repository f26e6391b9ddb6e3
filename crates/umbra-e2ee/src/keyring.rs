//! The receiver's secrets: the current one and, for a grace period, the previous one.

use std::time::{Duration, Instant};

use crate::secret::BaseKey;
use crate::suite::CipherSuite;

/// How long the previous secret still decrypts after a new one is set. Covers frames in flight
/// and senders that switch a few seconds after this receiver does.
pub const DEFAULT_GRACE_PERIOD: Duration = Duration::from_secs(5);

struct Epoch {
    id: u64,
    key: BaseKey,
}

/// Base keys a receiver tries for KIDs it has not seen. One per session, shared by all of its
/// received streams (each [`crate::StreamDecryptor`] keeps its own KID cache).
pub struct KeyRing {
    suite: CipherSuite,
    grace: Duration,
    current: Option<Epoch>,
    previous: Option<(Epoch, Instant)>,
    next_id: u64,
}

impl KeyRing {
    pub fn new(suite: CipherSuite) -> Self {
        Self::with_grace_period(suite, DEFAULT_GRACE_PERIOD)
    }

    pub fn with_grace_period(suite: CipherSuite, grace: Duration) -> Self {
        Self { suite, grace, current: None, previous: None, next_id: 1 }
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn grace_period(&self) -> Duration {
        self.grace
    }

    pub fn has_secret(&self) -> bool {
        self.current.is_some()
    }

    /// Makes `key` current; the former current key stays usable until `now + grace`. Setting
    /// the key that is already current changes nothing.
    pub fn set_base_key(&mut self, key: BaseKey, now: Instant) {
        if self.current.as_ref().is_some_and(|c| c.key == key) {
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if let Some(old) = self.current.replace(Epoch { id, key }) {
            self.previous = Some((old, now + self.grace));
        }
    }

    /// Current first, then the previous one while its grace period lasts.
    pub(crate) fn candidates(&self, now: Instant) -> impl Iterator<Item = (u64, &BaseKey)> {
        let current = self.current.as_ref().map(|e| (e.id, &e.key));
        let previous = self.previous.as_ref().filter(|(_, until)| now < *until).map(|(e, _)| (e.id, &e.key));
        current.into_iter().chain(previous)
    }

    /// Whether keys derived from epoch `id` may still be used.
    pub(crate) fn is_live(&self, id: u64, now: Instant) -> bool {
        self.candidates(now).any(|(e, _)| e == id)
    }
}
