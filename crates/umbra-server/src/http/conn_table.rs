//! Every open HTTP connection and what it is doing, so that at the connection cap the server can
//! make room by closing a connection that is doing nothing useful (waiting for a request header,
//! fresh or between keep-alive requests) instead of refusing everyone, attackers and health
//! checks alike. A connection with a request in flight or upgraded to a WebSocket is never shed.
//!
//! A connection's slot lives as long as its socket: the [`SlotGuard`] rides inside the stream
//! handed to hyper, so a socket that outlives hyper's connection (an upgraded WebSocket) keeps
//! counting against the cap until it is closed.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// What a connection is doing. Transitions: `Idle → Busy → Idle | Upgraded`, and `Idle → Shed`
/// (only by [`ConnTable`], by compare-and-swap, so a connection that just began a request is
/// never shed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Waiting for a complete request header.
    Idle = 0,
    Busy = 1,
    Upgraded = 2,
    /// Chosen to be closed; its task drops it.
    Shed = 3,
}

impl ConnState {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => ConnState::Idle,
            1 => ConnState::Busy,
            2 => ConnState::Upgraded,
            _ => ConnState::Shed,
        }
    }
}

pub struct Slot {
    state: AtomicU8,
    /// Milliseconds since the table's epoch at which the connection last became idle.
    idle_since: AtomicU64,
    shed: Notify,
    epoch: Instant,
}

impl Slot {
    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn state(&self) -> ConnState {
        ConnState::from_u8(self.state.load(SeqCst))
    }

    /// Marks a request as started. `None` when the connection has just been shed.
    pub fn begin_request(self: &Arc<Self>) -> Option<BusyGuard> {
        self.state
            .compare_exchange(ConnState::Idle as u8, ConnState::Busy as u8, SeqCst, SeqCst)
            .ok()
            .map(|_| BusyGuard(Arc::clone(self)))
    }

    pub fn mark_upgraded(&self) {
        self.state.store(ConnState::Upgraded as u8, SeqCst);
    }

    /// Resolves once the table has chosen this connection to be closed.
    pub async fn shed_requested(&self) {
        self.shed.notified().await
    }
}

/// Held while a request is in flight (until hyper drops the response body).
pub struct BusyGuard(Arc<Slot>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        let slot = &self.0;
        // Fails harmlessly when the request upgraded the connection.
        if slot.state.compare_exchange(ConnState::Busy as u8, ConnState::Idle as u8, SeqCst, SeqCst).is_ok() {
            slot.idle_since.store(slot.now(), Relaxed);
        }
    }
}

/// The outcome of [`ConnTable::admit`].
pub enum Admission {
    Admitted {
        slot: SlotGuard,
        shed_another: bool,
    },
    /// At the cap and every connection busy or upgraded.
    Full,
}

pub struct ConnTable {
    slots: Mutex<HashMap<u64, Arc<Slot>>>,
    next_id: AtomicU64,
    cap: usize,
    epoch: Instant,
}

impl ConnTable {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self { slots: Mutex::new(HashMap::new()), next_id: AtomicU64::new(0), cap, epoch: Instant::now() })
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.slots().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<u64, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a slot for a new connection, shedding the longest-idle connection when the table
    /// is at its cap. Linear in the number of connections, but only at the cap.
    pub fn admit(self: &Arc<Self>) -> Admission {
        let mut slots = self.slots();
        let mut shed_another = false;
        if slots.len() >= self.cap {
            // Shed connections still hold their slot until their task drops them.
            let closing = slots.values().filter(|s| s.state() == ConnState::Shed).count();
            if slots.len() - closing >= self.cap {
                if !Self::shed_longest_idle(&slots) {
                    return Admission::Full;
                }
                shed_another = true;
            }
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let slot = Arc::new(Slot {
            state: AtomicU8::new(ConnState::Idle as u8),
            idle_since: AtomicU64::new(0),
            shed: Notify::new(),
            epoch: self.epoch,
        });
        slot.idle_since.store(slot.now(), Relaxed);
        slots.insert(id, Arc::clone(&slot));
        Admission::Admitted { slot: SlotGuard { table: Arc::clone(self), id, slot }, shed_another }
    }

    /// Sheds the longest-idle connection, if any; frees a descriptor when `accept` runs out.
    pub fn shed_one(&self) -> bool {
        Self::shed_longest_idle(&self.slots())
    }

    fn shed_longest_idle(slots: &HashMap<u64, Arc<Slot>>) -> bool {
        let mut idle: Vec<&Arc<Slot>> = slots.values().filter(|s| s.state() == ConnState::Idle).collect();
        idle.sort_by_key(|s| s.idle_since.load(Relaxed));
        // A candidate may begin a request between the scan and the swap: try the next one.
        for s in idle {
            if s.state.compare_exchange(ConnState::Idle as u8, ConnState::Shed as u8, SeqCst, SeqCst).is_ok() {
                s.shed.notify_one();
                return true;
            }
        }
        false
    }
}

/// A connection's place in the table; dropping it frees the place.
pub struct SlotGuard {
    table: Arc<ConnTable>,
    id: u64,
    slot: Arc<Slot>,
}

impl SlotGuard {
    pub fn slot(&self) -> &Arc<Slot> {
        &self.slot
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        self.table.slots().remove(&self.id);
    }
}

/// The socket together with its slot, so the slot lasts exactly as long as the socket.
pub struct CountedStream {
    io: TcpStream,
    _slot: SlotGuard,
}

impl CountedStream {
    pub fn new(io: TcpStream, slot: SlotGuard) -> Self {
        Self { io, _slot: slot }
    }
}

impl AsyncRead for CountedStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(t: &Arc<ConnTable>) -> (SlotGuard, bool) {
        match t.admit() {
            Admission::Admitted { slot, shed_another } => (slot, shed_another),
            Admission::Full => panic!("table full"),
        }
    }

    #[test]
    fn sheds_the_longest_idle_and_never_a_busy_or_upgraded_one() {
        let t = ConnTable::new(3);
        let (a, _) = admitted(&t);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (b, _) = admitted(&t);
        std::thread::sleep(std::time::Duration::from_millis(2));
        let (c, _) = admitted(&t);
        let busy = a.slot().begin_request().unwrap();
        let (d, shed) = admitted(&t);
        assert!(shed);
        assert_eq!(a.slot().state(), ConnState::Busy);
        assert_eq!(b.slot().state(), ConnState::Shed, "b was idle longest");
        assert!(b.slot().begin_request().is_none(), "a shed connection takes no request");
        drop(b);
        c.slot().begin_request().unwrap().0.mark_upgraded();
        // a busy, c upgraded, d idle: d goes next.
        let (_e, shed) = admitted(&t);
        assert!(shed);
        assert_eq!(d.slot().state(), ConnState::Shed);
        drop(d);
        drop(busy);
        assert_eq!(a.slot().state(), ConnState::Idle);
        assert_eq!(c.slot().state(), ConnState::Upgraded);
    }

    #[test]
    fn full_when_nothing_can_be_shed() {
        let t = ConnTable::new(1);
        let (a, _) = admitted(&t);
        let _busy = a.slot().begin_request().unwrap();
        assert!(matches!(t.admit(), Admission::Full));
        assert_eq!(t.len(), 1);
        drop(_busy);
        drop(a);
        assert!(t.is_empty());
    }
}
