//! The queue from the hub to one socket task, bounded in frames and in bytes.
//!
//! The hub never waits for a socket: it pushes and moves on. A client that stops reading would
//! otherwise make the server hold everything sent to it, so a push that would exceed either bound
//! fails, the hub lets go of the socket and *cuts* the queue: the socket task stops at once (even
//! mid-write), the queued frames are freed, and the connection stays resumable from its replay
//! buffer. Every queued byte is also on a process-wide gauge (`umbra_signaling_outbox_bytes`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

use tokio::sync::{Notify, mpsc};

use super::frame::Frame;
use crate::metrics::Metrics;

/// How many frames and bytes an outbox holds at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    pub frames: usize,
    pub bytes: usize,
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The client is not reading fast enough.
    Full,
    /// The socket task has ended.
    Closed,
}

struct Shared {
    queued: AtomicUsize,
    limit: usize,
    cut: AtomicBool,
    cut_notify: Notify,
    metrics: Arc<Metrics>,
}

impl Shared {
    fn release(&self, bytes: usize) {
        self.queued.fetch_sub(bytes, Relaxed);
        self.metrics.signaling_outbox_bytes.fetch_sub(bytes as i64, Relaxed);
    }
}

/// The hub's end.
pub struct Outbox {
    tx: mpsc::Sender<Frame>,
    shared: Arc<Shared>,
}

/// The socket task's end. Dropping it frees whatever is still queued.
pub struct OutboxRx {
    rx: mpsc::Receiver<Frame>,
    shared: Arc<Shared>,
}

pub fn outbox(bounds: Bounds, metrics: Arc<Metrics>) -> (Outbox, OutboxRx) {
    let (tx, rx) = mpsc::channel(bounds.frames.max(1));
    let shared = Arc::new(Shared {
        queued: AtomicUsize::new(0),
        limit: bounds.bytes,
        cut: AtomicBool::new(false),
        cut_notify: Notify::new(),
        metrics,
    });
    (Outbox { tx, shared: shared.clone() }, OutboxRx { rx, shared })
}

impl Outbox {
    pub fn push(&self, frame: Frame) -> Result<(), PushError> {
        let size = frame.wire_len();
        let before = self.shared.queued.fetch_add(size, Relaxed);
        if before + size > self.shared.limit {
            self.shared.queued.fetch_sub(size, Relaxed);
            return Err(PushError::Full);
        }
        self.shared.metrics.signaling_outbox_bytes.fetch_add(size as i64, Relaxed);
        self.tx.try_send(frame).map_err(|e| {
            self.shared.release(size);
            match e {
                mpsc::error::TrySendError::Full(_) => PushError::Full,
                mpsc::error::TrySendError::Closed(_) => PushError::Closed,
            }
        })
    }

    /// Ends the socket without writing what is queued: its client fell too far behind.
    pub fn cut(&self) {
        if self.shared.cut.swap(true, Relaxed) {
            return;
        }
        self.shared.metrics.signaling_slow_sockets_dropped.fetch_add(1, Relaxed);
        // `notify_one` keeps a permit when the socket task is not waiting yet.
        self.shared.cut_notify.notify_one();
    }
}

impl OutboxRx {
    /// The next frame; `None` when the hub let go of the socket (after the queue is written, or
    /// at once if it cut the socket).
    pub async fn recv(&mut self) -> Option<Frame> {
        if self.is_cut() {
            return None;
        }
        let shared = self.shared.clone();
        tokio::select! {
            biased;
            () = shared.cut_notify.notified() => None,
            f = self.rx.recv() => f.map(|f| self.taken(f)),
        }
    }

    /// A frame already queued, without waiting.
    pub fn try_recv(&mut self) -> Option<Frame> {
        if self.is_cut() {
            return None;
        }
        self.rx.try_recv().ok().map(|f| self.taken(f))
    }

    fn taken(&self, f: Frame) -> Frame {
        self.shared.release(f.wire_len());
        f
    }

    pub fn is_cut(&self) -> bool {
        self.shared.cut.load(Relaxed)
    }

    /// Resolves when the hub cuts the socket; for racing a write that may never finish.
    pub fn cut_signal(&self) -> impl Future<Output = ()> + Send + 'static {
        let shared = self.shared.clone();
        async move {
            if !shared.cut.load(Relaxed) {
                shared.cut_notify.notified().await;
            }
        }
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        self.rx.close();
        while let Ok(f) = self.rx.try_recv() {
            self.shared.release(f.wire_len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signaling::frame::EventBody;

    fn text(n: usize) -> Frame {
        Frame::Text("x".repeat(n).into())
    }

    #[test]
    fn pushes_beyond_the_byte_or_frame_bound_fail_and_the_gauge_follows() {
        let metrics = Arc::new(Metrics::default());
        let gauge = || metrics.signaling_outbox_bytes.load(Relaxed);
        let (tx, mut rx) = outbox(Bounds { frames: 3, bytes: 1000 }, metrics.clone());
        tx.push(text(600)).unwrap();
        assert_eq!(tx.push(text(500)), Err(PushError::Full), "bytes");
        tx.push(text(300)).unwrap();
        assert_eq!(gauge(), 900);
        assert!(matches!(rx.try_recv(), Some(Frame::Text(t)) if t.len() == 600));
        assert_eq!(gauge(), 300);
        tx.push(text(10)).unwrap();
        tx.push(text(10)).unwrap();
        assert_eq!(tx.push(text(10)), Err(PushError::Full), "frames");
        assert_eq!(gauge(), 320, "a refused push is not counted");
        drop(rx);
        assert_eq!(gauge(), 0, "dropping the receiver frees what was queued");
        assert_eq!(tx.push(text(1)), Err(PushError::Closed));
        assert_eq!(gauge(), 0);
    }

    #[tokio::test]
    async fn a_cut_outbox_ends_at_once_however_much_is_queued() {
        let metrics = Arc::new(Metrics::default());
        let (tx, mut rx) = outbox(Bounds { frames: 10, bytes: 1 << 20 }, metrics.clone());
        let event = EventBody::new(&umbra_protocol::ServerMessage::ForcedDisconnect);
        tx.push(Frame::Event { seq: 1, body: event }).unwrap();
        let signal = rx.cut_signal();
        tx.cut();
        signal.await;
        assert!(rx.recv().await.is_none());
        drop(rx);
        assert_eq!(metrics.signaling_outbox_bytes.load(Relaxed), 0);
    }
}
