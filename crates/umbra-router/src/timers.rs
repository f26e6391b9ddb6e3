//! The earliest str0m deadline over all connections, without scanning them: a min-heap of
//! (deadline, connection). A connection's deadline changes after nearly every drain, so old
//! entries are left in place and skipped when popped (the connection remembers its current
//! one); the heap is rebuilt if stale entries pile up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::demux::ConnId;

#[derive(Default)]
pub struct Timers {
    heap: BinaryHeap<Reverse<(Instant, ConnId)>>,
}

impl Timers {
    pub fn schedule(&mut self, id: ConnId, current: &mut Option<Instant>, at: Instant) {
        if *current != Some(at) {
            *current = Some(at);
            self.heap.push(Reverse((at, id)));
        }
    }

    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Pop the earliest entry if it is due.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, ConnId)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Replace the heap with exactly the live deadlines.
    pub fn rebuild(&mut self, live: impl Iterator<Item = (Instant, ConnId)>) {
        self.heap = live.map(Reverse).collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        let mut t = Timers::default();
        let now = Instant::now();
        let (mut a, mut b) = (None, None);
        t.schedule(ConnId(1), &mut a, now + Duration::from_millis(20));
        t.schedule(ConnId(2), &mut b, now + Duration::from_millis(10));
        // Same deadline again: no new entry.
        t.schedule(ConnId(2), &mut b, now + Duration::from_millis(10));
        assert_eq!(t.len(), 2);
        assert_eq!(t.pop_due(now), None);
        assert_eq!(t.next(), Some(now + Duration::from_millis(10)));
        let later = now + Duration::from_millis(30);
        assert_eq!(t.pop_due(later).map(|e| e.1), Some(ConnId(2)));
        assert_eq!(t.pop_due(later).map(|e| e.1), Some(ConnId(1)));
        assert_eq!(t.pop_due(later), None);
    }
}
