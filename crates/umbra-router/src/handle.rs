//! The synchronous API: a cloneable handle that sends commands to the router thread and waits
//! for the reply. Calls take microseconds to a few milliseconds (an SDP answer includes no
//! network round trip), so an async host can call them from `spawn_blocking`, or directly when
//! a short block is acceptable.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::config::{EventSink, RouterConfig};
use crate::engine::Engine;
use crate::error::{Result, RouterError};
use crate::events::Target;
use crate::stats::RouterStats;
use crate::tap::PacketTap;

/// A publisher's upstream peer connection: its offer sends audio and/or video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSpec {
    pub session_id: String,
    pub connection_id: String,
    pub stream_id: String,
    pub sdp_offer: String,
}

/// A subscriber's downstream peer connection for one published stream: its offer has
/// recvonly (or sendrecv) audio/video sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeSpec {
    pub session_id: String,
    pub connection_id: String,
    pub subscription_id: String,
    pub stream_id: String,
    pub sdp_offer: String,
}

pub(crate) type Reply<T> = SyncSender<Result<T>>;

pub(crate) enum Command {
    Publish(PublishSpec, Reply<String>),
    Subscribe(SubscribeSpec, Reply<String>),
    AddCandidate { session_id: String, target: Target, candidate: String, reply: Reply<()> },
    Unpublish { session_id: String, stream_id: String, reply: Reply<()> },
    Unsubscribe { session_id: String, subscription_id: String, reply: Reply<()> },
    Disconnect { session_id: String, connection_id: String, reply: Reply<()> },
    Stats(Reply<RouterStats>),
    SetTap(Option<PacketTap>, Reply<()>),
    SetEventSink(Option<EventSink>, Reply<()>),
    Shutdown,
}

/// Starts routers.
pub struct Router;

impl Router {
    /// Bind the sockets and start the router thread.
    pub fn start(config: RouterConfig) -> Result<RouterHandle> {
        let (tx, rx) = mpsc::channel();
        let (waker_tx, waker_rx) = UnixDatagram::pair().map_err(RouterError::Start)?;
        waker_tx.set_nonblocking(true).map_err(RouterError::Start)?;
        waker_rx.set_nonblocking(true).map_err(RouterError::Start)?;
        let engine = Engine::new(config, waker_rx)?;
        let local_addrs = engine.local_addrs();
        let thread = std::thread::Builder::new()
            .name("umbra-router".into())
            .spawn(move || engine.run(rx))
            .map_err(RouterError::Start)?;
        Ok(RouterHandle {
            inner: Arc::new(Inner { tx, waker: waker_tx, local_addrs, thread: Mutex::new(Some(thread)) }),
        })
    }
}

/// Cheap to clone, `Send + Sync`. The router stops on [`RouterHandle::shutdown`] or when the
/// last handle is dropped.
#[derive(Clone)]
pub struct RouterHandle {
    inner: Arc<Inner>,
}

struct Inner {
    tx: Sender<Command>,
    waker: UnixDatagram,
    local_addrs: Vec<SocketAddr>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Inner {
    fn send(&self, cmd: Command) -> Result<()> {
        self.tx.send(cmd).map_err(|_| RouterError::Stopped)?;
        // A full waker buffer means a wake-up is already pending: ignoring that is correct.
        let _ = self.waker.send(&[1]);
        Ok(())
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let (reply, rx) = mpsc::sync_channel(1);
        self.send(make(reply))?;
        rx.recv().map_err(|_| RouterError::Stopped)?
    }

    fn stop(&self) {
        let _ = self.send(Command::Shutdown);
        let thread = self.thread.lock().map(|mut t| t.take()).unwrap_or(None);
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RouterHandle {
    /// Accept a publisher's offer; returns the SDP answer (ICE-lite, host candidates of the
    /// advertised addresses, all of them in the answer: no trickling from the router).
    pub fn publish(&self, spec: PublishSpec) -> Result<String> {
        self.inner.call(|r| Command::Publish(spec, r))
    }

    /// Accept a subscriber's offer for a published stream; returns the SDP answer.
    pub fn subscribe(&self, spec: SubscribeSpec) -> Result<String> {
        self.inner.call(|r| Command::Subscribe(spec, r))
    }

    /// A trickled candidate of the client (the `candidate:` line, with or without the `a=`).
    /// ICE-lite needs none (the client's checks reveal its address) but accepting them keeps
    /// the signaling uniform.
    pub fn add_remote_candidate(&self, session_id: &str, target: Target, candidate: &str) -> Result<()> {
        let (session_id, candidate) = (session_id.to_owned(), candidate.to_owned());
        self.inner.call(|reply| Command::AddCandidate { session_id, target, candidate, reply })
    }

    /// Remove a published stream; its subscribers are closed and told so by
    /// [`crate::RouterEventKind::Closed`].
    pub fn unpublish(&self, session_id: &str, stream_id: &str) -> Result<()> {
        let (session_id, stream_id) = (session_id.to_owned(), stream_id.to_owned());
        self.inner.call(|reply| Command::Unpublish { session_id, stream_id, reply })
    }

    pub fn unsubscribe(&self, session_id: &str, subscription_id: &str) -> Result<()> {
        let (session_id, subscription_id) = (session_id.to_owned(), subscription_id.to_owned());
        self.inner.call(|reply| Command::Unsubscribe { session_id, subscription_id, reply })
    }

    /// Remove every peer connection of a signaling connection (its publications, with their
    /// subscribers, and its subscriptions).
    pub fn disconnect(&self, session_id: &str, connection_id: &str) -> Result<()> {
        let (session_id, connection_id) = (session_id.to_owned(), connection_id.to_owned());
        self.inner.call(|reply| Command::Disconnect { session_id, connection_id, reply })
    }

    pub fn stats(&self) -> Result<RouterStats> {
        self.inner.call(Command::Stats)
    }

    /// Install (or remove with `None`) the packet tap; see [`crate::TapDirection`].
    pub fn set_packet_tap(&self, tap: Option<PacketTap>) -> Result<()> {
        self.inner.call(|r| Command::SetTap(tap, r))
    }

    /// Replace where events go (for hosts that learn their sink after starting the router,
    /// like the server's `MediaRouter::start`). Events before this went to the previous sink.
    pub fn set_event_sink(&self, sink: Option<EventSink>) -> Result<()> {
        self.inner.call(|r| Command::SetEventSink(sink, r))
    }

    /// The bound socket addresses (with the ports picked for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.local_addrs.clone()
    }

    /// Stop the router thread and wait for it; every peer connection is dropped. Later calls
    /// on any clone return [`RouterError::Stopped`].
    pub fn shutdown(&self) {
        self.inner.stop();
    }
}
