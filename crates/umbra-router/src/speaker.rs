//! Active speaker detection for one session, from the RFC 6464 audio levels publishers put in
//! their audio packets. Sans-IO: levels and times go in, a change of speaker comes out.
//!
//! Each publisher's loudness (`127 - level`, level in -dBov, so higher is louder) is smoothed
//! with an exponential average of time constant [`SMOOTHING`], and decays towards silence while
//! no packet comes (DTX sends none in silence). A publisher becomes the active speaker when its
//! smoothed loudness is above [`SPEECH_THRESHOLD`] and above the current speaker's by
//! [`MARGIN`], continuously for [`HOLD`]; and at most one change happens per [`HOLD`]. Nobody
//! replaces the last speaker through silence, so it stays active.
//!
//! Bound: one small entry per publisher that sent an audio level; entries leave with
//! [`SpeakerDetector::remove`].

use std::time::{Duration, Instant};

/// Time constant of the loudness average: a syllable (~100–200 ms) lifts it, a click does not.
pub const SMOOTHING: Duration = Duration::from_millis(400);
/// How long a publisher must stay the loudest before it takes over, and the least time
/// between two changes.
pub const HOLD: Duration = Duration::from_millis(500);
/// Speech: louder than -50 dBov (smoothed). Background noise of a quiet room sits well below.
pub const SPEECH_THRESHOLD: f64 = 127.0 - 50.0;
/// How much louder than the current speaker a challenger must be.
pub const MARGIN: f64 = 3.0;

#[derive(Debug)]
struct Entry<K> {
    key: K,
    loudness: f64,
    last: Instant,
}

#[derive(Debug)]
pub struct SpeakerDetector<K> {
    entries: Vec<Entry<K>>,
    active: Option<K>,
    changed_at: Option<Instant>,
    /// The challenger and since when it has been the loudest.
    challenger: Option<(K, Instant)>,
}

impl<K> Default for SpeakerDetector<K> {
    fn default() -> Self {
        SpeakerDetector { entries: Vec::new(), active: None, changed_at: None, challenger: None }
    }
}

fn decay(dt: Duration) -> f64 {
    (-dt.as_secs_f64() / SMOOTHING.as_secs_f64()).exp()
}

impl<K: Clone + PartialEq> SpeakerDetector<K> {
    /// One audio packet's level (str0m's `audio_level`: 0 loudest down to -127).
    pub fn observe(&mut self, key: &K, level: i8, now: Instant) {
        let x = 127.0 - f64::from(level.unsigned_abs().min(127));
        match self.entries.iter_mut().find(|e| e.key == *key) {
            Some(e) => {
                let keep = decay(now.saturating_duration_since(e.last));
                e.loudness = e.loudness * keep + x * (1.0 - keep);
                e.last = now;
            }
            // A new publisher starts from silence: one loud packet is not speech yet.
            None => self.entries.push(Entry {
                key: key.clone(),
                loudness: x * (1.0 - decay(Duration::from_millis(20))),
                last: now,
            }),
        }
    }

    pub fn remove(&mut self, key: &K) {
        self.entries.retain(|e| e.key != *key);
        if self.active.as_ref() == Some(key) {
            self.active = None;
        }
        if self.challenger.as_ref().is_some_and(|(c, _)| c == key) {
            self.challenger = None;
        }
    }

    /// Smoothed loudness as of `now` (decayed since the last packet).
    fn loudness(&self, e: &Entry<K>, now: Instant) -> f64 {
        e.loudness * decay(now.saturating_duration_since(e.last))
    }

    /// Call regularly (every ~100–200 ms): the new active speaker, when it changes.
    pub fn tick(&mut self, now: Instant) -> Option<K> {
        let current = self.active.as_ref().and_then(|a| self.entries.iter().find(|e| e.key == *a));
        let floor = current.map_or(SPEECH_THRESHOLD, |c| self.loudness(c, now).max(SPEECH_THRESHOLD) + MARGIN);
        let loudest = self
            .entries
            .iter()
            .filter(|e| self.active.as_ref() != Some(&e.key))
            .map(|e| (e, self.loudness(e, now)))
            .filter(|(_, l)| *l > floor)
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(e, _)| e.key.clone());
        let Some(loudest) = loudest else {
            self.challenger = None;
            return None;
        };
        let since = match &self.challenger {
            Some((c, since)) if *c == loudest => *since,
            _ => {
                self.challenger = Some((loudest.clone(), now));
                now
            }
        };
        let held = now.saturating_duration_since(since) >= HOLD;
        let calm = self.changed_at.is_none_or(|t| now.saturating_duration_since(t) >= HOLD);
        if held && calm {
            self.active = Some(loudest.clone());
            self.changed_at = Some(now);
            self.challenger = None;
            return Some(loudest);
        }
        None
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[cfg(test)]
    pub fn active(&self) -> Option<&K> {
        self.active.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed 20 ms packets of the given levels (one per publisher) for `ms`, ticking every
    /// 100 ms; return the changes with their times.
    fn run(d: &mut SpeakerDetector<u32>, t: &mut Instant, ms: u64, levels: &[(u32, i8)]) -> Vec<(u32, u64)> {
        let start = *t;
        let mut out = Vec::new();
        for i in 0..ms / 20 {
            for &(k, l) in levels {
                d.observe(&k, l, *t);
            }
            if i % 5 == 4
                && let Some(k) = d.tick(*t)
            {
                out.push((k, t.duration_since(start).as_millis() as u64));
            }
            *t += Duration::from_millis(20);
        }
        out
    }

    #[test]
    fn the_loudest_becomes_active_after_the_hold_and_stays_through_silence() {
        let mut d = SpeakerDetector::default();
        let mut t = Instant::now();
        // Three publishers: -20, -35 and -70 dBov (the last is below the speech threshold).
        let changes = run(&mut d, &mut t, 2000, &[(1, -35), (2, -20), (3, -70)]);
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert_eq!(changes[0].0, 2);
        // The smoothing first (~0.5 s to rise past the threshold), then the hold.
        assert!(changes[0].1 >= 500 && changes[0].1 <= 1200, "{changes:?}");
        // Everybody silent (DTX: no packets at all): the last speaker stays.
        assert!(run(&mut d, &mut t, 2000, &[]).is_empty());
        assert_eq!(d.active(), Some(&2));
        // Publisher 1 talks now: it takes over, once.
        let changes = run(&mut d, &mut t, 2000, &[(1, -25), (2, -100)]);
        assert_eq!(changes.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1]);
    }

    #[test]
    fn a_short_burst_does_not_steal_and_changes_are_spaced() {
        let mut d = SpeakerDetector::default();
        let mut t = Instant::now();
        run(&mut d, &mut t, 1500, &[(1, -30)]);
        assert_eq!(d.active(), Some(&1));
        // 200 ms of a loud cough from 2 while 1 keeps talking.
        assert!(run(&mut d, &mut t, 200, &[(1, -30), (2, -5)]).is_empty());
        assert!(run(&mut d, &mut t, 1000, &[(1, -30), (2, -110)]).is_empty());
        // Two publishers alternating every 300 ms: never more than one change per HOLD.
        let mut changes = Vec::new();
        let mut now_ms = 0;
        for i in 0..10 {
            let levels = if i % 2 == 0 { [(1, -60), (2, -20)] } else { [(1, -20), (2, -60)] };
            for (k, at) in run(&mut d, &mut t, 300, &levels) {
                changes.push((k, now_ms + at));
            }
            now_ms += 300;
        }
        for w in changes.windows(2) {
            assert!(w[1].1 - w[0].1 >= 500, "{changes:?}");
        }
    }

    #[test]
    fn a_removed_speaker_is_replaced() {
        let mut d = SpeakerDetector::default();
        let mut t = Instant::now();
        run(&mut d, &mut t, 1500, &[(1, -30), (2, -45)]);
        assert_eq!(d.active(), Some(&1));
        d.remove(&1);
        let changes = run(&mut d, &mut t, 1500, &[(2, -45)]);
        assert_eq!(changes.first().map(|c| c.0), Some(2));
    }
}
