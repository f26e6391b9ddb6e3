//! Turns per-frame outcomes into the few events an application should see.

use std::time::{Duration, Instant};

use crate::error::FrameError;

/// A mismatch is reported once at least this many frames in a row failed authentication...
pub const MISMATCH_MIN_FRAMES: u32 = 10;
/// ...over at least this long (so one burst of corrupted packets is not a mismatch).
pub const MISMATCH_MIN_DURATION: Duration = Duration::from_millis(500);
/// At most one `DecryptionInternalError` event per this interval per stream.
pub const MALFORMED_EVENT_INTERVAL: Duration = Duration::from_secs(10);

/// What a receiving stream reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum E2eeEvent {
    /// Frames keep failing authentication: the sender's secret differs from ours.
    EncryptionSecretMismatch,
    /// After a mismatch, a frame authenticated again.
    EncryptionSecretMatch,
    /// Frames arrive that cannot be taken apart (truncated, malformed) or the crypto backend
    /// failed. Rate-limited.
    DecryptionInternalError(FrameError),
}

/// The mismatch rule of `docs/e2ee-protocol.md` §8, per received stream.
#[derive(Debug, Default, Clone)]
pub struct MismatchDetector {
    consecutive_failures: u32,
    first_failure: Option<Instant>,
    mismatched: bool,
    last_malformed_event: Option<Instant>,
}

impl MismatchDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` while a mismatch is reported and no frame has authenticated since.
    pub fn is_mismatched(&self) -> bool {
        self.mismatched
    }

    pub fn on_auth_failure(&mut self, now: Instant) -> Option<E2eeEvent> {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        let first = *self.first_failure.get_or_insert(now);
        if !self.mismatched
            && self.consecutive_failures >= MISMATCH_MIN_FRAMES
            && now.saturating_duration_since(first) >= MISMATCH_MIN_DURATION
        {
            self.mismatched = true;
            return Some(E2eeEvent::EncryptionSecretMismatch);
        }
        None
    }

    pub fn on_success(&mut self) -> Option<E2eeEvent> {
        self.consecutive_failures = 0;
        self.first_failure = None;
        if std::mem::take(&mut self.mismatched) {
            return Some(E2eeEvent::EncryptionSecretMatch);
        }
        None
    }

    /// Malformed frames say nothing about the secret: they neither count as failures nor
    /// break a run of them.
    pub fn on_malformed(&mut self, now: Instant, error: &FrameError) -> Option<E2eeEvent> {
        let due = self
            .last_malformed_event
            .is_none_or(|t| now.saturating_duration_since(t) >= MALFORMED_EVENT_INTERVAL);
        if due {
            self.last_malformed_event = Some(now);
            return Some(E2eeEvent::DecryptionInternalError(error.clone()));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_both_frames_and_time() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        for i in 0..30 {
            // 30 failures within 290 ms: not yet.
            assert_eq!(d.on_auth_failure(t0 + Duration::from_millis(i * 10)), None);
        }
        assert_eq!(d.on_auth_failure(t0 + Duration::from_millis(500)), Some(E2eeEvent::EncryptionSecretMismatch));
        assert_eq!(d.on_auth_failure(t0 + Duration::from_millis(900)), None, "reported once");
        assert_eq!(d.on_success(), Some(E2eeEvent::EncryptionSecretMatch));
        assert_eq!(d.on_success(), None);

        // Slow failures: long enough, but fewer than 10 frames.
        let mut d = MismatchDetector::new();
        for i in 0..9 {
            assert_eq!(d.on_auth_failure(t0 + Duration::from_secs(i)), None);
        }
        assert_eq!(d.on_auth_failure(t0 + Duration::from_secs(9)), Some(E2eeEvent::EncryptionSecretMismatch));
    }

    #[test]
    fn malformed_events_are_rate_limited() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        let e = FrameError::Truncated("x");
        assert!(d.on_malformed(t0, &e).is_some());
        for i in 1..100 {
            assert!(d.on_malformed(t0 + Duration::from_millis(i * 50), &e).is_none());
        }
        assert!(d.on_malformed(t0 + MALFORMED_EVENT_INTERVAL, &e).is_some());
    }
}
