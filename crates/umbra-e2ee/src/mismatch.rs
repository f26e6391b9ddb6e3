//! Turns per-frame outcomes into the few events an application should see
//! (`docs/e2ee-protocol.md` §8).
//!
//! A run of frames that do not decrypt means one of two things, and the app must be told which:
//! the sender encrypts with another secret (*mismatch*: "check the secret"), or the sender does
//! not encrypt at all (*not encrypted*: "this participant's client sends plain media"). The
//! frames themselves tell them apart without any key: an encrypting sender writes one KID per
//! secret epoch and a counter that grows by one per frame, so the SFrame headers of a mismatched
//! run are coherent; plain media read as SFrame gives headers that jump between random KIDs and
//! counters, or does not parse at all.
//!
//! Memory per stream is bounded: the last [`RUN_HISTORY`] headers of the current run.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::error::FrameError;

/// A mismatch is reported once at least this many frames in a row failed authentication...
pub const MISMATCH_MIN_FRAMES: u32 = 10;
/// ...over at least this long (so one burst of corrupted packets is not a mismatch).
pub const MISMATCH_MIN_DURATION: Duration = Duration::from_millis(500);
/// At most one `DecryptionInternalError` event per this interval per stream.
pub const MALFORMED_EVENT_INTERVAL: Duration = Duration::from_secs(10);
/// Headers of the current run of failures kept to judge whether they come from an encrypter.
pub const RUN_HISTORY: usize = 32;
/// An encrypting sender changes KID only when its secret changes: a run spans at most two.
const MAX_COHERENT_KIDS: usize = 2;

/// What a receiving stream reports to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum E2eeEvent {
    /// Frames keep failing authentication: the sender's secret differs from ours.
    EncryptionSecretMismatch,
    /// After a mismatch (or a stream reported as not encrypted), a frame authenticated again.
    EncryptionSecretMatch,
    /// Frames keep arriving that no encrypting sender would produce (their SFrame headers are
    /// incoherent or do not parse): the sender does not encrypt. Never rendered; not a mismatch.
    StreamNotEncrypted,
    /// Frames arrive that cannot be taken apart (truncated, malformed) or the crypto backend
    /// failed. Rate-limited.
    DecryptionInternalError(FrameError),
}

/// The current run of frames that did not decrypt.
#[derive(Debug, Default, Clone)]
struct Run {
    auth_failures: u32,
    malformed: u32,
    first: Option<Instant>,
    /// (KID, counter) of the latest authentication failures, oldest first.
    headers: VecDeque<(u64, u64)>,
}

impl Run {
    fn len(&self) -> u32 {
        self.auth_failures.saturating_add(self.malformed)
    }

    fn lasted(&self, now: Instant) -> bool {
        self.first.is_some_and(|f| now.saturating_duration_since(f) >= MISMATCH_MIN_DURATION)
    }

    /// Whether the run looks like an encrypting sender's frames: few malformed, at most two KIDs,
    /// counters mostly increasing within a KID (loss and reordering allowed).
    fn coherent(&self) -> bool {
        if self.malformed.saturating_mul(5) > self.len() {
            return false;
        }
        let mut kids: Vec<u64> = self.headers.iter().map(|&(kid, _)| kid).collect();
        kids.sort_unstable();
        kids.dedup();
        if kids.len() > MAX_COHERENT_KIDS {
            return false;
        }
        let (mut pairs, mut increasing) = (0u32, 0u32);
        for kid in kids {
            let ctrs: Vec<u64> = self.headers.iter().filter(|h| h.0 == kid).map(|h| h.1).collect();
            for w in ctrs.windows(2) {
                pairs += 1;
                increasing += u32::from(w[1] > w[0]);
            }
        }
        pairs < 4 || increasing * 4 >= pairs * 3
    }
}

/// The mismatch rule of `docs/e2ee-protocol.md` §8, per received stream.
#[derive(Debug, Default, Clone)]
pub struct MismatchDetector {
    run: Run,
    /// A mismatch or not-encrypted report stands until a frame decrypts.
    reported: bool,
    last_malformed_event: Option<Instant>,
}

impl MismatchDetector {
    pub fn new() -> Self {
        Self::default()
    }

    /// `true` while a mismatch (or a not-encrypted stream) is reported and no frame has
    /// authenticated since.
    pub fn is_mismatched(&self) -> bool {
        self.reported
    }

    /// A frame with this SFrame header parsed but did not authenticate under any key we hold.
    pub fn on_auth_failure(&mut self, now: Instant, kid: u64, ctr: u64) -> Option<E2eeEvent> {
        self.run.auth_failures = self.run.auth_failures.saturating_add(1);
        self.run.first.get_or_insert(now);
        if self.run.headers.len() == RUN_HISTORY {
            self.run.headers.pop_front();
        }
        self.run.headers.push_back((kid, ctr));
        self.judge(now)
    }

    pub fn on_success(&mut self) -> Option<E2eeEvent> {
        self.run = Run::default();
        if std::mem::take(&mut self.reported) {
            return Some(E2eeEvent::EncryptionSecretMatch);
        }
        None
    }

    /// A frame could not be taken apart. A few say nothing about the secret (they neither count
    /// as authentication failures nor break a run of them); a run made mostly of them is a
    /// sender that does not encrypt.
    pub fn on_malformed(&mut self, now: Instant, error: &FrameError) -> Option<E2eeEvent> {
        self.run.malformed = self.run.malformed.saturating_add(1);
        self.run.first.get_or_insert(now);
        if let Some(event) = self.judge(now) {
            return Some(event);
        }
        let due =
            self.last_malformed_event.is_none_or(|t| now.saturating_duration_since(t) >= MALFORMED_EVENT_INTERVAL);
        if due {
            self.last_malformed_event = Some(now);
            return Some(E2eeEvent::DecryptionInternalError(error.clone()));
        }
        None
    }

    fn judge(&mut self, now: Instant) -> Option<E2eeEvent> {
        if self.reported || !self.run.lasted(now) {
            return None;
        }
        let event = if self.run.coherent() {
            (self.run.auth_failures >= MISMATCH_MIN_FRAMES).then_some(E2eeEvent::EncryptionSecretMismatch)
        } else {
            (self.run.len() >= MISMATCH_MIN_FRAMES).then_some(E2eeEvent::StreamNotEncrypted)
        };
        self.reported = event.is_some();
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn needs_both_frames_and_time() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        for i in 0..30 {
            // 30 failures within 290 ms: not yet.
            assert_eq!(d.on_auth_failure(t0 + MS * (i * 10), 7, u64::from(i)), None);
        }
        assert_eq!(d.on_auth_failure(t0 + MS * 500, 7, 30), Some(E2eeEvent::EncryptionSecretMismatch));
        assert_eq!(d.on_auth_failure(t0 + MS * 900, 7, 31), None, "reported once");
        assert_eq!(d.on_success(), Some(E2eeEvent::EncryptionSecretMatch));
        assert_eq!(d.on_success(), None);

        // Slow failures: long enough, but fewer than 10 frames.
        let mut d = MismatchDetector::new();
        for i in 0..9 {
            assert_eq!(d.on_auth_failure(t0 + Duration::from_secs(i), 7, i), None);
        }
        assert_eq!(d.on_auth_failure(t0 + Duration::from_secs(9), 7, 9), Some(E2eeEvent::EncryptionSecretMismatch));
    }

    #[test]
    fn malformed_events_are_rate_limited() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        let e = FrameError::Truncated("x");
        assert!(d.on_malformed(t0, &e).is_some());
        for i in 1..9 {
            assert!(d.on_malformed(t0 + MS * (i * 50), &e).is_none());
        }
        d.on_success();
        assert!(d.on_malformed(t0 + MS * 600, &e).is_none(), "a decrypted frame does not reset the rate limit");
        assert!(d.on_malformed(t0 + MALFORMED_EVENT_INTERVAL, &e).is_some());
    }

    #[test]
    fn a_rotating_sender_with_loss_and_reordering_is_a_mismatch() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        // KID 1 then KID 2 (a secret change), every fifth frame lost, two frames swapped.
        let mut ctrs: Vec<(u64, u64)> = (0..12).filter(|c| c % 5 != 4).map(|c| (1, c)).collect();
        ctrs.extend((0..12).map(|c| (2, c)));
        ctrs.swap(3, 4);
        let mut events = vec![];
        for (i, (kid, ctr)) in ctrs.into_iter().enumerate() {
            events.extend(d.on_auth_failure(t0 + MS * (33 * i as u32), kid, ctr));
        }
        assert_eq!(events, vec![E2eeEvent::EncryptionSecretMismatch]);
    }

    #[test]
    fn random_headers_are_a_stream_that_is_not_encrypted() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        let mut events = vec![];
        // What a plain frame's bytes read as: a KID and counter that change every frame.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for i in 0..30u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            events.extend(d.on_auth_failure(t0 + MS * (33 * i), x % 8, x >> 40));
        }
        assert_eq!(events, vec![E2eeEvent::StreamNotEncrypted], "once, and never a mismatch");
        assert!(d.is_mismatched());
        assert_eq!(d.on_success(), Some(E2eeEvent::EncryptionSecretMatch));
    }

    #[test]
    fn a_run_of_unparseable_frames_is_not_encrypted() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        let e = FrameError::BadHeader("x");
        let events: Vec<_> = (0..20u32).filter_map(|i| d.on_malformed(t0 + MS * (33 * i), &e)).collect();
        assert_eq!(events, vec![E2eeEvent::DecryptionInternalError(e), E2eeEvent::StreamNotEncrypted]);
    }
}
