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
//! The transport may hand the receiver the same frame more than once (browsers' receive
//! transforms got one frame up to 26 times as RTX copies of its packets arrived). A copy says
//! nothing about the sender, so it is recognised (same KID, counter and length as a failure of
//! the run) and skipped; counted, it would read as a counter that did not grow.
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
    /// The latest authentication failures, oldest first.
    headers: VecDeque<Failure>,
}

/// What identifies a failed frame: its clear header and its length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failure {
    kid: u64,
    ctr: u64,
    len: usize,
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
        let mut kids: Vec<u64> = self.headers.iter().map(|h| h.kid).collect();
        kids.sort_unstable();
        kids.dedup();
        if kids.len() > MAX_COHERENT_KIDS {
            return false;
        }
        let (mut pairs, mut increasing) = (0u32, 0u32);
        for kid in kids {
            let ctrs: Vec<u64> = self.headers.iter().filter(|h| h.kid == kid).map(|h| h.ctr).collect();
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

    /// A frame of `len` bytes (as received) with this SFrame header parsed but did not
    /// authenticate under any key we hold.
    ///
    /// A frame with the same KID, counter and length as one of the run's last [`RUN_HISTORY`]
    /// failures is a copy of it: like a replayed frame, it neither counts nor breaks the run.
    /// The length tells copies from distinct plain frames that happen to read as the same
    /// header, which are evidence of a sender that does not encrypt and must count.
    pub fn on_auth_failure(&mut self, now: Instant, kid: u64, ctr: u64, len: usize) -> Option<E2eeEvent> {
        let failure = Failure { kid, ctr, len };
        if self.run.headers.contains(&failure) {
            return None;
        }
        self.run.auth_failures = self.run.auth_failures.saturating_add(1);
        self.run.first.get_or_insert(now);
        if self.run.headers.len() == RUN_HISTORY {
            self.run.headers.pop_front();
        }
        self.run.headers.push_back(failure);
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
    /// A frame length for tests where every frame has its own counter anyway.
    const LEN: usize = 1200;

    /// Feeds (milliseconds from the start, KID, counter, length) failures; returns the events.
    fn replay(d: &mut MismatchDetector, failures: &[(u32, u64, u64, usize)]) -> Vec<(usize, E2eeEvent)> {
        let t0 = Instant::now();
        let mut events = vec![];
        for (i, &(ms, kid, ctr, len)) in failures.iter().enumerate() {
            events.extend(d.on_auth_failure(t0 + MS * ms, kid, ctr, len).map(|e| (i, e)));
        }
        events
    }

    #[test]
    fn needs_both_frames_and_time() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        for i in 0..30 {
            // 30 failures within 290 ms: not yet.
            assert_eq!(d.on_auth_failure(t0 + MS * (i * 10), 7, u64::from(i), LEN), None);
        }
        assert_eq!(d.on_auth_failure(t0 + MS * 500, 7, 30, LEN), Some(E2eeEvent::EncryptionSecretMismatch));
        assert_eq!(d.on_auth_failure(t0 + MS * 900, 7, 31, LEN), None, "reported once");
        assert_eq!(d.on_success(), Some(E2eeEvent::EncryptionSecretMatch));
        assert_eq!(d.on_success(), None);

        // Slow failures: long enough, but fewer than 10 frames.
        let mut d = MismatchDetector::new();
        for i in 0..9 {
            assert_eq!(d.on_auth_failure(t0 + Duration::from_secs(i), 7, i, LEN), None);
        }
        assert_eq!(
            d.on_auth_failure(t0 + Duration::from_secs(9), 7, 9, LEN),
            Some(E2eeEvent::EncryptionSecretMismatch)
        );
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
            events.extend(d.on_auth_failure(t0 + MS * (33 * i as u32), kid, ctr, LEN));
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
            events.extend(d.on_auth_failure(t0 + MS * (33 * i), x % 8, x >> 40, LEN));
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

    #[test]
    fn copies_of_a_frame_delivered_again_are_not_a_counter_that_stands_still() {
        // Captured in Chromium 156 (browser test native-other-secret-to-chromium): the VP8 track
        // of a native publisher with another secret. The receive transform got frame 1 seventeen
        // times (RTX copies of its packet, sent as bandwidth-probing padding) before the key
        // frame; counted, those copies made the run "not encrypted".
        const KID: u64 = 5_480_551_399_604_879_813;
        let mut run: Vec<(u32, u64, u64, usize)> = [0, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 29, 30, 30, 30, 30, 30]
            .into_iter()
            .map(|ms| (ms, KID, 1, 1216))
            .collect();
        let rest = [
            (30, 5311),
            (61, 1784),
            (92, 1680),
            (123, 2055),
            (154, 1771),
            (186, 1767),
            (233, 2105),
            (264, 2389),
            (295, 2164),
            (326, 2280),
            (358, 5194),
            (389, 2559),
            (420, 1223),
            (467, 2548),
            (498, 2918),
            (530, 2737),
        ];
        run.extend(rest.iter().zip(2..).map(|(&(ms, len), ctr)| (ms, KID, ctr, len)));
        let mut d = MismatchDetector::new();
        assert_eq!(replay(&mut d, &run), vec![(run.len() - 1, E2eeEvent::EncryptionSecretMismatch)]);
    }

    #[test]
    fn a_copy_arriving_after_a_later_frame_is_skipped_too() {
        // Captured likewise: frame 3 again after frame 4.
        const KID: u64 = 841_098_200_808_262_055;
        let run: Vec<(u32, u64, u64, usize)> = [
            (0, 2, 5311),
            (31, 3, 1784),
            (31, 3, 1784),
            (78, 4, 1680),
            (78, 3, 1784),
            (93, 5, 2055),
            (140, 6, 1771),
            (171, 7, 1767),
            (203, 8, 2105),
            (234, 9, 2389),
            (265, 10, 2164),
            (297, 11, 2280),
            (327, 12, 2430),
            (374, 13, 7341),
            (405, 14, 3476),
            (437, 15, 1338),
            (468, 16, 2698),
            (499, 17, 2340),
            (531, 18, 3458),
        ]
        .into_iter()
        .map(|(ms, ctr, len)| (ms, KID, ctr, len))
        .collect();
        let mut d = MismatchDetector::new();
        assert_eq!(replay(&mut d, &run), vec![(run.len() - 1, E2eeEvent::EncryptionSecretMismatch)]);
    }

    #[test]
    fn plain_frames_that_read_as_one_header_are_distinct_frames() {
        // Plain VP8 delta frames often read as counter 3 (captured: most frames of the plaintext
        // publisher); with another length each is another frame, not a copy, and a counter that
        // does not grow is what a sender that does not encrypt looks like.
        let run: Vec<(u32, u64, u64, usize)> = (0..20u32).map(|i| (33 * i, 5, 3, 1000 + i as usize)).collect();
        let mut d = MismatchDetector::new();
        assert_eq!(replay(&mut d, &run), vec![(16, E2eeEvent::StreamNotEncrypted)], "at the first frame 500 ms in");
    }

    #[test]
    fn copies_neither_count_nor_break_a_run() {
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        // One frame delivered 30 times over a second: one failure, no verdict.
        for i in 0..30u32 {
            assert_eq!(d.on_auth_failure(t0 + MS * (33 * i), 9, 0, 800), None);
        }
        // Nine more distinct frames complete a run of ten.
        let events: Vec<_> =
            (1..10u32).filter_map(|c| d.on_auth_failure(t0 + MS * (1000 + 33 * c), 9, c.into(), 800)).collect();
        assert_eq!(events, vec![E2eeEvent::EncryptionSecretMismatch]);
    }
}
