//! Per-KID sliding replay window over SFrame counters.

/// How many counters behind the highest one are still accepted (out-of-order delivery after
/// retransmission). 1024 frames is 34 s of 30 fps video or 20 s of 50 packet/s audio.
pub const REPLAY_WINDOW: u64 = 1024;
const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Remembers which counters were accepted. Callers [`check`](Self::check) before opening a
/// frame and [`accept`](Self::accept) only after it authenticated, so forged frames can never
/// move the window.
#[derive(Debug, Clone, Default)]
pub struct ReplayWindow {
    highest: Option<u64>,
    seen: [u64; WORDS],
}

impl ReplayWindow {
    pub fn new() -> Self {
        Self::default()
    }

    fn bit(ctr: u64) -> (usize, u64) {
        let i = ctr % REPLAY_WINDOW;
        ((i / 64) as usize, 1u64 << (i % 64))
    }

    /// `true` if `ctr` is new and inside the window.
    pub fn check(&self, ctr: u64) -> bool {
        match self.highest {
            None => true,
            Some(h) if ctr > h => true,
            Some(h) if h - ctr >= REPLAY_WINDOW => false,
            Some(_) => {
                let (w, m) = Self::bit(ctr);
                self.seen[w] & m == 0
            }
        }
    }

    /// Records `ctr` as received. Call only for frames that authenticated and passed `check`.
    pub fn accept(&mut self, ctr: u64) {
        match self.highest {
            Some(h) if ctr <= h => {}
            Some(h) if ctr - h < REPLAY_WINDOW => {
                for c in h + 1..ctr {
                    let (w, m) = Self::bit(c);
                    self.seen[w] &= !m;
                }
                self.highest = Some(ctr);
                let (w, m) = Self::bit(ctr);
                self.seen[w] &= !m;
            }
            _ => {
                self.seen = [0; WORDS];
                self.highest = Some(ctr);
            }
        }
        let (w, m) = Self::bit(ctr);
        self.seen[w] |= m;
    }

    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_and_too_old() {
        let mut w = ReplayWindow::new();
        assert!(w.check(5));
        w.accept(5);
        assert!(!w.check(5));
        assert!(w.check(3));
        w.accept(3);
        assert!(!w.check(3));
        w.accept(5 + REPLAY_WINDOW);
        assert!(!w.check(5), "fell out of the window");
        assert!(w.check(6));
        w.accept(6);
        assert!(!w.check(6));
        w.accept(u64::MAX);
        assert!(!w.check(u64::MAX));
        assert!(w.check(u64::MAX - 1));
    }

    #[test]
    fn matches_a_set_model() {
        use std::collections::BTreeSet;
        let mut w = ReplayWindow::new();
        let mut seen = BTreeSet::new();
        let mut highest = 0u64;
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ctr = if x.is_multiple_of(4) { highest + x % 50 } else { highest.saturating_sub(x % 1100) };
            let model_ok = !seen.contains(&ctr) && (seen.is_empty() || ctr > highest || highest - ctr < REPLAY_WINDOW);
            assert_eq!(w.check(ctr), model_ok, "ctr {ctr} highest {highest}");
            if model_ok {
                w.accept(ctr);
                seen.insert(ctr);
                highest = highest.max(ctr);
            }
        }
    }
}
