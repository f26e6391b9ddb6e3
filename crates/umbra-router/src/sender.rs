//! The send half of a media worker. Handing a datagram to the kernel costs about as much CPU
//! as everything the worker does to make it (route lookup, skb, and on loopback the receiver's
//! whole delivery, all inside `sendmmsg`: docs/performance.md, "A send thread per worker").
//! Done on the worker, one packet's copies to 100 subscribers leave only after
//! 100 × (protect + send). A large fan-out is therefore handed over in chunks to a send thread:
//! the worker protects the next subscribers' copies while the kernel takes the previous ones,
//! and the last copy leaves after about max(protect, send) × 100.
//!
//! Small flushes (a session of a few, RTCP, a retransmission) and fan-outs below
//! [`MIN_FANOUT`] subscribers do not pay a thread wake-up: while the send thread is idle, the
//! worker sends them itself.
//!
//! Invariant: datagrams reach the kernel in the order the worker queued them. The worker sends
//! itself only when nothing it queued earlier is still waiting or being sent (`in_flight` is
//! 0: the send thread's `sendmmsg` of everything before has returned), and the thread takes
//! jobs in order; so no connection's packets are reordered. Bound: at most [`QUEUE_JOBS`] jobs
//! wait; a worker that outruns the kernel blocks on the full queue, as it would inside a
//! `sendmmsg` of its own, and its loop lag (`engine::overload`) shows it.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::batch::{self, SendCounts};
use crate::demux::ConnId;
use crate::stats::LatencyHistogram;

/// Datagrams a fan-out hands over at a time (whole subscribers, so a few more): the send
/// thread starts on the first subscribers' copies early, and one `sendmmsg` per chunk is
/// small beside the kernel's per-datagram work it carries.
pub const CHUNK: usize = 16;
/// Subscribers a packet must go to before its copies are handed over in chunks. Below it the
/// second thread's wake-up per packet costs more than the overlap gains: fanout bench, one
/// worker, paced, 25 subscribers: ~1 µs more CPU per packet and the same latency with the
/// hand-over; 50 subscribers: the same CPU and p99 1.2 against 1.4 ms (docs/performance.md).
pub const MIN_FANOUT: usize = 32;
/// Jobs (a flush, or a chunk of a large fan-out) waiting for the send thread.
const QUEUE_JOBS: usize = 64;
/// How long [`SendPath::settle`] waits for the send thread to catch up before reporting what
/// it has (it only waits behind at most [`QUEUE_JOBS`] jobs, normally microseconds).
const SETTLE_WAIT: Duration = Duration::from_secs(2);

/// (connection, destination, datagram), as the outbox holds them.
pub type Datagrams = Vec<(ConnId, SocketAddr, Vec<u8>)>;

/// What was handed to the kernel, kept where both the worker and its send thread can reach it.
#[derive(Default)]
pub struct Sent {
    /// sendmmsg calls, messages and datagrams, since the worker started.
    pub counts: SendCounts,
    /// Connections a datagram failed for since the last [`SendPath::settle`], once per failure.
    pub failed: Vec<ConnId>,
    /// Kernel arrival of a forwarded group's first packet → its last copy handed to the kernel.
    pub latency: LatencyHistogram,
}

struct Job {
    datagrams: Datagrams,
    /// Kernel arrival of the earliest packet these datagrams (and the jobs before) forward.
    forwarded_since: Option<Instant>,
    /// Answered once everything queued before it has been sent.
    ack: Option<SyncSender<()>>,
}

/// A worker's sockets, as the side that sends sees them.
struct Kernel {
    v4: Option<UdpSocket>,
    v6: Option<UdpSocket>,
    sent: Mutex<Sent>,
    /// Jobs queued for the send thread and not yet sent.
    in_flight: AtomicUsize,
}

impl Kernel {
    fn deliver(&self, job: Job) {
        let mut v4: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut v6: Vec<(SocketAddr, &[u8])> = Vec::new();
        let mut v4_ids: Vec<ConnId> = Vec::new();
        let mut v6_ids: Vec<ConnId> = Vec::new();
        for (id, dest, data) in &job.datagrams {
            if dest.is_ipv4() {
                v4.push((*dest, data));
                v4_ids.push(*id);
            } else {
                v6.push((*dest, data));
                v6_ids.push(*id);
            }
        }
        let mut counts = SendCounts::default();
        let mut failed = Vec::new();
        for (list, ids, socket) in [(&v4, &v4_ids, &self.v4), (&v6, &v6_ids, &self.v6)] {
            if list.is_empty() {
                continue;
            }
            let Some(socket) = socket else {
                failed.extend_from_slice(ids);
                continue;
            };
            counts.add(batch::send_all(socket, list, |i, e| {
                tracing::debug!("send to {} failed: {e}", list[i].0);
                failed.push(ids[i]);
            }));
        }
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        sent.counts.add(counts);
        sent.failed.append(&mut failed);
        if let Some(since) = job.forwarded_since {
            sent.latency.record(since.elapsed());
        }
    }
}

struct Thread {
    queue: SyncSender<Job>,
    handle: JoinHandle<()>,
    /// The send thread's CPU clock, for the worker's CPU figures.
    clock: Option<libc::clockid_t>,
}

/// Where a worker's datagrams go: straight to the kernel, or through its send thread.
pub struct SendPath {
    kernel: Arc<Kernel>,
    thread: Option<Thread>,
}

impl SendPath {
    /// `thread`: the name of a send thread to start; `None` sends on the caller's thread. A
    /// send thread that cannot be started (or later dies) leaves the worker sending itself.
    pub fn new(v4: Option<UdpSocket>, v6: Option<UdpSocket>, thread: Option<String>) -> SendPath {
        let kernel = Arc::new(Kernel { v4, v6, sent: Mutex::default(), in_flight: AtomicUsize::new(0) });
        let thread = thread.and_then(|name| Self::spawn(&kernel, name));
        SendPath { kernel, thread }
    }

    fn spawn(kernel: &Arc<Kernel>, name: String) -> Option<Thread> {
        let (queue, jobs) = mpsc::sync_channel::<Job>(QUEUE_JOBS);
        let (clock_tx, clock_rx) = mpsc::sync_channel(1);
        let kernel = Arc::clone(kernel);
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            let _ = clock_tx.send(own_cpu_clock());
            run(&kernel, jobs);
        });
        match spawned {
            Ok(handle) => {
                let clock = clock_rx.recv_timeout(SETTLE_WAIT).ok().flatten();
                Some(Thread { queue, handle, clock })
            }
            Err(e) => {
                tracing::warn!("media worker sends on its own thread: no send thread ({e})");
                None
            }
        }
    }

    #[cfg(test)]
    pub fn has_thread(&self) -> bool {
        self.thread.is_some()
    }

    /// Hand `datagrams` to the kernel: through the send thread if `chunk` (a part of a larger
    /// fan-out, more to follow) or if the thread still has earlier datagrams, else at once.
    /// `forwarded_since` marks the end of a forwarded group (its latency is recorded once its
    /// last datagram is handed over).
    pub fn send(&mut self, datagrams: Datagrams, forwarded_since: Option<Instant>, chunk: bool) {
        let job = Job { datagrams, forwarded_since, ack: None };
        if chunk || self.kernel.in_flight.load(Ordering::Acquire) > 0 {
            self.submit(job);
        } else {
            self.kernel.deliver(job);
        }
    }

    fn submit(&mut self, job: Job) {
        let job = match &self.thread {
            Some(t) => {
                self.kernel.in_flight.fetch_add(1, Ordering::AcqRel);
                match t.queue.send(job) {
                    Ok(()) => return,
                    Err(mpsc::SendError(job)) => {
                        self.kernel.in_flight.fetch_sub(1, Ordering::AcqRel);
                        job
                    }
                }
            }
            None => job,
        };
        if self.thread.take().is_some() {
            tracing::error!("media worker's send thread stopped; the worker sends itself from now on");
        }
        self.kernel.deliver(job);
    }

    /// Wait (bounded) until everything queued so far is with the kernel, then return the
    /// totals and the failures since the last call.
    pub fn settle(&mut self) -> Sent {
        if self.thread.is_some() {
            let (ack, done) = mpsc::sync_channel(1);
            self.submit(Job { datagrams: Vec::new(), forwarded_since: None, ack: Some(ack) });
            let _ = done.recv_timeout(SETTLE_WAIT);
        }
        let mut sent = self.kernel.sent.lock().unwrap_or_else(PoisonError::into_inner);
        Sent { counts: sent.counts, failed: std::mem::take(&mut sent.failed), latency: sent.latency.clone() }
    }

    /// Connections a datagram failed for since the last call (or [`settle`](Self::settle)),
    /// without waiting.
    pub fn failures(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.kernel.sent.lock().unwrap_or_else(PoisonError::into_inner).failed)
    }

    /// CPU time of the send thread (zero without one).
    pub fn thread_cpu(&self) -> Duration {
        self.thread.as_ref().and_then(|t| t.clock).map(cpu_clock_time).unwrap_or_default()
    }
}

impl Drop for SendPath {
    fn drop(&mut self) {
        if let Some(Thread { queue, handle, .. }) = self.thread.take() {
            // Closing the queue ends the thread once it has sent what was queued.
            drop(queue);
            let _ = handle.join();
        }
    }
}

fn run(kernel: &Kernel, jobs: Receiver<Job>) {
    while let Ok(mut job) = jobs.recv() {
        let ack = job.ack.take();
        // A panic in a send (none is known) loses that job, not the worker's sends.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| kernel.deliver(job))).is_err() {
            tracing::error!("media send thread: a panic while sending; those datagrams are lost");
        }
        // After the sendmmsg returned: the worker may now send itself without overtaking it.
        kernel.in_flight.fetch_sub(1, Ordering::AcqRel);
        // Last, so a settled worker finds nothing in flight and sends its next flush itself.
        if let Some(ack) = ack {
            let _ = ack.send(());
        }
    }
}

fn own_cpu_clock() -> Option<libc::clockid_t> {
    let mut clock: libc::clockid_t = 0;
    // SAFETY: pthread_self is always valid for the calling thread; the call writes one
    // clockid_t into the local we own.
    let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
    (rc == 0).then_some(clock)
}

fn cpu_clock_time(clock: libc::clockid_t) -> Duration {
    // SAFETY: clock_gettime writes one timespec into the zeroed local we own; a clock of a
    // thread that has exited makes it fail, which reads as zero.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (UdpSocket, UdpSocket) {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        b.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        (a, b)
    }

    fn sends_in_order(thread: bool) {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let n = 300u16;
        // Read while sending: 300 datagrams at once would overrun the default receive buffer.
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 8];
            (0..n).map(|_| b.recv(&mut buf).map(|len| buf[..len].to_vec())).collect::<std::io::Result<Vec<_>>>()
        });
        let mut path = SendPath::new(Some(a), None, thread.then(|| "test-send".into()));
        assert_eq!(path.has_thread(), thread);
        let start = Instant::now();
        for (k, chunk) in (0..n).collect::<Vec<_>>().chunks(7).enumerate() {
            let datagrams = chunk.iter().map(|i| (ConnId(1), to, i.to_be_bytes().to_vec())).collect();
            // Chunks and small flushes mixed, as a worker mixes fan-outs and RTCP.
            path.send(datagrams, None, k % 3 != 2);
            // Paced a little, as a fan-out's chunks are, so the reader keeps up.
            std::thread::sleep(Duration::from_micros(200));
        }
        path.send(Vec::new(), Some(start), false);
        let sent = path.settle();
        assert_eq!(sent.counts.datagrams, u64::from(n));
        assert!(sent.failed.is_empty());
        assert_eq!(sent.latency.count(), 1);
        let received = reader.join().unwrap().expect("every datagram arrives on loopback");
        for (i, d) in received.iter().enumerate() {
            assert_eq!(d.as_slice(), &(i as u16).to_be_bytes(), "datagram {i} out of order");
        }
        if thread {
            assert!(path.thread_cpu() > Duration::ZERO);
        }
    }

    #[test]
    fn the_send_thread_keeps_the_order_the_worker_queued() {
        sends_in_order(true);
    }

    #[test]
    fn without_a_thread_the_worker_sends_in_order() {
        sends_in_order(false);
    }

    #[test]
    fn small_flushes_leave_from_the_worker_while_the_thread_is_idle() {
        let (a, b) = pair();
        let to = b.local_addr().unwrap();
        let mut path = SendPath::new(Some(a), None, Some("test-send".into()));
        path.settle();
        // The thread is parked once its clock stops between two looks (it still runs from the
        // acknowledgement back into its queue's wait).
        let mut idle = path.thread_cpu();
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(10));
            let now = path.thread_cpu();
            if now == idle {
                break;
            }
            idle = now;
        }
        for i in 0..20u8 {
            path.send(vec![(ConnId(1), to, vec![i])], None, false);
        }
        let mut buf = [0u8; 4];
        for i in 0..20u8 {
            assert_eq!(b.recv(&mut buf).unwrap(), 1);
            assert_eq!(buf[0], i);
        }
        assert_eq!(path.thread_cpu(), idle, "the send thread did not run for them");
        assert_eq!(path.kernel.sent.lock().unwrap().counts.datagrams, 20);
    }

    #[test]
    fn a_family_without_a_socket_counts_as_failed_for_its_connections() {
        let (a, _b) = pair();
        let mut path = SendPath::new(Some(a), None, Some("test-send".into()));
        let v6: SocketAddr = "[::1]:9".parse().unwrap();
        path.send(vec![(ConnId(7), v6, vec![1]), (ConnId(8), v6, vec![2])], None, true);
        let sent = path.settle();
        assert_eq!(sent.failed, vec![ConnId(7), ConnId(8)]);
        assert_eq!(sent.counts.datagrams, 0);
        // Reported once.
        assert!(path.settle().failed.is_empty());
    }
}
