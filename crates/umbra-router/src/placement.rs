//! Which media worker a session lives on.
//!
//! A session's peer connections all live on one worker, so a publisher's frames reach its
//! subscribers without crossing threads (no locks or channels on the media path) and each
//! worker's demux holds only its own connections. A session goes to the worker with the fewest
//! connections when its first connection is placed, and stays there while it has any.
//!
//! # Invariant and bound
//!
//! - `sessions` holds exactly the sessions with at least one connection placed and not yet
//!   released; each entry's `refs` counts those connections, and `load[w]` is the sum of
//!   `refs` over the sessions on worker `w`. A request is placed (`place`) before it is sent
//!   to its worker, and the worker releases it (`release`) when the request fails or the
//!   connection it made closes, so the map shrinks back to nothing as sessions empty: its
//!   size is bounded by the live connections, never by the sessions ever seen.
//! - Placing and releasing take one short lock, on the control path only (a publish, a
//!   subscribe, a close); media never touches it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug)]
struct Entry {
    worker: usize,
    refs: usize,
}

#[derive(Debug)]
struct Inner {
    sessions: HashMap<String, Entry>,
    load: Vec<usize>,
}

/// Shared by the handle (which places) and the workers (which release).
#[derive(Debug, Clone)]
pub struct Placement {
    inner: Arc<Mutex<Inner>>,
}

impl Placement {
    pub fn new(workers: usize) -> Placement {
        Placement { inner: Arc::new(Mutex::new(Inner { sessions: HashMap::new(), load: vec![0; workers.max(1)] })) }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock leaves only counters behind: keep serving.
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserve a place for one more connection of `session`: its worker, or the least loaded
    /// one for a new session.
    pub fn place(&self, session: &str) -> usize {
        let mut g = self.lock();
        let g = &mut *g;
        let worker = match g.sessions.get_mut(session) {
            Some(e) => {
                e.refs += 1;
                e.worker
            }
            None => {
                let worker = (0..g.load.len()).min_by_key(|&w| g.load[w]).unwrap_or(0);
                g.sessions.insert(session.to_owned(), Entry { worker, refs: 1 });
                worker
            }
        };
        g.load[worker] += 1;
        worker
    }

    /// Give back a place (the request failed, or its connection closed).
    pub fn release(&self, session: &str) {
        let mut g = self.lock();
        let g = &mut *g;
        let Some(e) = g.sessions.get_mut(session) else {
            return;
        };
        e.refs -= 1;
        let worker = e.worker;
        if e.refs == 0 {
            g.sessions.remove(session);
        }
        g.load[worker] = g.load[worker].saturating_sub(1);
    }

    /// The worker of a session that has connections, for requests about existing ones.
    pub fn find(&self, session: &str) -> Option<usize> {
        self.lock().sessions.get(session).map(|e| e.worker)
    }

    /// Connections placed per worker.
    #[cfg(test)]
    pub fn load(&self) -> Vec<usize> {
        self.lock().load.clone()
    }

    /// Sessions with connections (for tests of the bound).
    #[cfg(test)]
    pub fn sessions(&self) -> usize {
        self.lock().sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_go_to_the_least_loaded_worker_and_leave_no_trace() {
        let p = Placement::new(2);
        assert_eq!(p.place("a"), 0);
        assert_eq!(p.place("a"), 0);
        assert_eq!(p.place("b"), 1);
        assert_eq!(p.place("c"), 1, "worker 1 has 1 connection, worker 0 has 2");
        assert_eq!(p.load(), vec![2, 2]);
        assert_eq!(p.find("a"), Some(0));
        p.release("a");
        p.release("a");
        assert_eq!(p.find("a"), None);
        p.release("a"); // a stray release changes nothing
        p.release("b");
        p.release("c");
        assert_eq!(p.load(), vec![0, 0]);
        assert_eq!(p.sessions(), 0);
    }
}
