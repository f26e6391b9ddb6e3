//! Where each received frame goes on the file's time axis.
//!
//! Audio and video RTP clocks start at unrelated random values (RFC 3550 §5.1), so the recorder
//! cannot put them on one axis from their timestamps alone. It anchors each track at the arrival
//! of its first frame (relative to the file's start) and from then on follows the track's own
//! media clock, which keeps the publisher's pacing instead of the network's jitter. The cost:
//! audio/video sync is as good as the first frames' arrival spread (tens of milliseconds on a
//! healthy path), not lip-sync exact; RTCP sender reports would tighten it but are not exposed by
//! the SDK.

use std::time::Instant;

/// One track's mapping from its media clock to nanoseconds since the file's start.
#[derive(Debug, Clone)]
pub struct TrackClock {
    clock_rate: u32,
    first_ticks: u64,
    offset_ns: u64,
    last_ns: Option<u64>,
}

impl TrackClock {
    /// Anchors a track whose first frame (media time `ticks` at `clock_rate` Hz) arrived at
    /// `arrival`, in a file that started at `file_start`. A zero clock rate is treated as 90 kHz
    /// (the video rate) rather than dividing by zero.
    pub fn anchor(file_start: Instant, arrival: Instant, ticks: u64, clock_rate: u32) -> Self {
        let offset_ns = arrival.saturating_duration_since(file_start).as_nanos().min(u64::MAX as u128) as u64;
        Self {
            clock_rate: if clock_rate == 0 { 90_000 } else { clock_rate },
            first_ticks: ticks,
            offset_ns,
            last_ns: None,
        }
    }

    /// Nanoseconds since the file's start for a frame at media time `ticks`. Never earlier than
    /// the track's previous frame: a clock that steps back (a publisher restarting its encoder
    /// on the same stream) is held at the last position rather than rewinding the file.
    pub fn position_ns(&mut self, ticks: u64) -> u64 {
        let delta = ticks.saturating_sub(self.first_ticks) as u128;
        let since_first = (delta * 1_000_000_000 / self.clock_rate as u128).min(u64::MAX as u128) as u64;
        let ns = self.offset_ns.saturating_add(since_first).max(self.last_ns.unwrap_or(0));
        self.last_ns = Some(ns);
        ns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_track_that_starts_late_is_offset_by_its_arrival() {
        let start = Instant::now();
        let mut audio = TrackClock::anchor(start, start, 1_000_000, 48_000);
        let mut video = TrackClock::anchor(start, start + Duration::from_millis(40), 3_000_000_000, 90_000);
        assert_eq!(audio.position_ns(1_000_000), 0);
        assert_eq!(audio.position_ns(1_000_000 + 960), 20_000_000);
        assert_eq!(video.position_ns(3_000_000_000), 40_000_000);
        assert_eq!(video.position_ns(3_000_000_000 + 3000), 40_000_000 + 33_333_333);
    }

    #[test]
    fn a_clock_that_steps_back_holds_its_position() {
        let start = Instant::now();
        let mut c = TrackClock::anchor(start, start, 90_000, 90_000);
        assert_eq!(c.position_ns(180_000), 1_000_000_000);
        assert_eq!(c.position_ns(100), 1_000_000_000);
    }

    #[test]
    fn a_zero_clock_rate_does_not_divide_by_zero() {
        let start = Instant::now();
        let mut c = TrackClock::anchor(start, start, 0, 0);
        assert_eq!(c.position_ns(90_000), 1_000_000_000);
    }
}
