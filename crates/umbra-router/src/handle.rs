//! The synchronous API: a cloneable handle that sends commands to the media workers and waits
//! for the reply. Calls take microseconds to a few milliseconds (an SDP answer includes no
//! network round trip), so an async host can call them from `spawn_blocking`, or directly when
//! a short block is acceptable.
//!
//! Requests about a session go to the worker the session is placed on (`placement.rs`);
//! stats are gathered from every worker and summed; taps and event sinks are shared by all.

use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::config::{EventSink, RouterConfig};
use crate::engine::Engine;
use crate::error::{Result, RouterError};
use crate::events::Target;
use crate::placement::Placement;
use crate::stats::RouterStats;
use crate::tap::PacketTap;

/// A publisher's upstream peer connection: its offer sends audio and/or video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishSpec {
    pub session_id: String,
    pub connection_id: String,
    pub stream_id: String,
    pub sdp_offer: String,
    /// The stream's declared video size: that of its largest simulcast layer (each smaller
    /// layer is half the width and height of the next, docs/signaling.md § Simulcast layers).
    pub video_size: Option<(u32, u32)>,
}

/// What a subscriber wants of a subscription's video (docs/signaling.md
/// § `set_video_preference`). The default is everything: video on, no size or rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VideoWish {
    pub video: bool,
    pub max_size: Option<(u32, u32)>,
    pub max_frame_rate: Option<u32>,
}

impl Default for VideoWish {
    fn default() -> Self {
        VideoWish { video: true, max_size: None, max_frame_rate: None }
    }
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
    /// The subscriber's wish at subscribe time (kept across a `media_restart`).
    pub wish: VideoWish,
}

pub(crate) type Reply<T> = SyncSender<Result<T>>;

pub(crate) enum Command {
    Publish(PublishSpec, Reply<String>),
    Subscribe(SubscribeSpec, Reply<String>),
    AddCandidate { session_id: String, target: Target, candidate: String, reply: Reply<()> },
    Unpublish { session_id: String, stream_id: String, reply: Reply<()> },
    Unsubscribe { session_id: String, subscription_id: String, reply: Reply<()> },
    Disconnect { session_id: String, connection_id: String, reply: Reply<()> },
    SetVideoWish { session_id: String, subscription_id: String, wish: VideoWish, reply: Reply<()> },
    Stats(Reply<RouterStats>),
    SetTap(Option<PacketTap>, Reply<()>),
    SetEventSink(Option<EventSink>, Reply<()>),
    Stall(std::time::Duration, Reply<()>),
    Shutdown,
}

/// Starts routers.
pub struct Router;

impl Router {
    /// Bind every worker's sockets and start the worker threads.
    pub fn start(config: RouterConfig) -> Result<RouterHandle> {
        let n = config.media_workers;
        if n == 0 {
            return Err(RouterError::Config("media_workers must be at least 1".into()));
        }
        let placement = Placement::new(n);
        let mut configs = crate::config::per_worker(config, n)?;
        let mut workers = Vec::with_capacity(n);
        // Sockets are bound (and so ports checked) for every worker before any thread starts,
        // so a port clash fails the start instead of leaving a half-started router.
        let mut engines = Vec::with_capacity(n);
        for (index, config) in configs.drain(..).enumerate() {
            let (waker_tx, waker_rx) = UnixDatagram::pair().map_err(RouterError::Start)?;
            waker_tx.set_nonblocking(true).map_err(RouterError::Start)?;
            waker_rx.set_nonblocking(true).map_err(RouterError::Start)?;
            let engine = Engine::new(config, index, placement.clone(), waker_rx)?;
            engines.push((engine, waker_tx));
        }
        for (index, (engine, waker)) in engines.into_iter().enumerate() {
            let (tx, rx) = mpsc::channel();
            let local_addrs = engine.local_addrs();
            let thread = std::thread::Builder::new()
                .name(format!("umbra-router-{index}"))
                .spawn(move || engine.run(rx))
                .map_err(RouterError::Start)?;
            workers.push(Worker { tx, waker, local_addrs, thread: Mutex::new(Some(thread)) });
        }
        Ok(RouterHandle { inner: Arc::new(Inner { workers, placement, stopped: Default::default() }) })
    }
}

/// Cheap to clone, `Send + Sync`. The router stops on [`RouterHandle::shutdown`] or when the
/// last handle is dropped.
#[derive(Clone)]
pub struct RouterHandle {
    inner: Arc<Inner>,
}

struct Worker {
    tx: Sender<Command>,
    waker: UnixDatagram,
    local_addrs: Vec<SocketAddr>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Inner {
    workers: Vec<Worker>,
    placement: Placement,
    /// Set by `stop`: requests about sessions then report the router stopped, not an unknown
    /// id (shutting down released every session's place).
    stopped: std::sync::atomic::AtomicBool,
}

impl Worker {
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

impl Inner {
    fn stop(&self) {
        self.stopped.store(true, std::sync::atomic::Ordering::Relaxed);
        for w in &self.workers {
            w.stop();
        }
    }

    /// A request that makes a connection: placed first, the place given back if it fails
    /// (the worker gives it back when the connection it made closes).
    fn place<T>(&self, session_id: &str, make: impl FnOnce(Reply<T>) -> Command) -> Result<T> {
        let w = self.placement.place(session_id);
        let r = self.workers[w].call(make);
        if r.is_err() {
            self.placement.release(session_id);
        }
        r
    }

    /// A request about existing connections of a session: `unknown` when no worker has any.
    fn on_session<T>(
        &self,
        session_id: &str,
        unknown: impl FnOnce() -> RouterError,
        make: impl FnOnce(Reply<T>) -> Command,
    ) -> Result<T> {
        if self.workers.is_empty() || self.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RouterError::Stopped);
        }
        match self.placement.find(session_id) {
            Some(w) => self.workers[w].call(make),
            None => Err(unknown()),
        }
    }

    /// The same request to every worker, in order.
    fn each<T>(&self, mut make: impl FnMut(Reply<T>) -> Command) -> Result<Vec<T>> {
        self.workers.iter().map(|w| w.call(&mut make)).collect()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RouterHandle {
    /// Accept a publisher's offer; returns the SDP answer (ICE-lite, host candidates of the
    /// advertised addresses of the session's worker, all of them in the answer: no trickling
    /// from the router).
    pub fn publish(&self, spec: PublishSpec) -> Result<String> {
        let session = spec.session_id.clone();
        self.inner.place(&session, |r| Command::Publish(spec, r))
    }

    /// Accept a subscriber's offer for a published stream; returns the SDP answer.
    pub fn subscribe(&self, spec: SubscribeSpec) -> Result<String> {
        let session = spec.session_id.clone();
        if self.inner.stopped.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RouterError::Stopped);
        }
        if self.inner.placement.find(&session).is_none() {
            // No connection of the session anywhere, so surely no such stream: answer without
            // placing the session on a worker for nothing.
            return Err(RouterError::UnknownStream { session_id: spec.session_id, stream_id: spec.stream_id });
        }
        self.inner.place(&session, |r| Command::Subscribe(spec, r))
    }

    /// A trickled candidate of the client (the `candidate:` line, with or without the `a=`).
    /// ICE-lite needs none (the client's checks reveal its address) but accepting them keeps
    /// the signaling uniform.
    pub fn add_remote_candidate(&self, session_id: &str, target: Target, candidate: &str) -> Result<()> {
        let (session_id, candidate) = (session_id.to_owned(), candidate.to_owned());
        let unknown = {
            let (s, t) = (session_id.clone(), target.clone());
            move || match t {
                Target::Publisher { stream_id } => RouterError::UnknownStream { session_id: s, stream_id },
                Target::Subscriber { subscription_id } => {
                    RouterError::UnknownSubscription { session_id: s, subscription_id }
                }
            }
        };
        let s = session_id.clone();
        self.inner.on_session(&s, unknown, |reply| Command::AddCandidate { session_id, target, candidate, reply })
    }

    /// Remove a published stream; its subscribers are closed and told so by
    /// [`crate::RouterEventKind::Closed`].
    pub fn unpublish(&self, session_id: &str, stream_id: &str) -> Result<()> {
        let (s, st) = (session_id.to_owned(), stream_id.to_owned());
        let (session_id, stream_id) = (s.clone(), st.clone());
        self.inner.on_session(
            &s,
            || RouterError::UnknownStream { session_id: s.clone(), stream_id: st },
            |reply| Command::Unpublish { session_id, stream_id, reply },
        )
    }

    pub fn unsubscribe(&self, session_id: &str, subscription_id: &str) -> Result<()> {
        let (s, sub) = (session_id.to_owned(), subscription_id.to_owned());
        let (session_id, subscription_id) = (s.clone(), sub.clone());
        self.inner.on_session(
            &s,
            || RouterError::UnknownSubscription { session_id: s.clone(), subscription_id: sub },
            |reply| Command::Unsubscribe { session_id, subscription_id, reply },
        )
    }

    /// Change what a subscription's video carries: the router switches layer at the next key
    /// frame of the layer chosen and reports it with [`crate::RouterEventKind::LayerChanged`].
    pub fn set_video_wish(&self, session_id: &str, subscription_id: &str, wish: VideoWish) -> Result<()> {
        let (s, sub) = (session_id.to_owned(), subscription_id.to_owned());
        let (session_id, subscription_id) = (s.clone(), sub.clone());
        self.inner.on_session(
            &s,
            || RouterError::UnknownSubscription { session_id: s.clone(), subscription_id: sub },
            |reply| Command::SetVideoWish { session_id, subscription_id, wish, reply },
        )
    }

    /// Remove every peer connection of a signaling connection (its publications, with their
    /// subscribers, and its subscriptions).
    pub fn disconnect(&self, session_id: &str, connection_id: &str) -> Result<()> {
        let (s, c) = (session_id.to_owned(), connection_id.to_owned());
        let (session_id, connection_id) = (s.clone(), c.clone());
        self.inner.on_session(
            &s,
            || RouterError::UnknownConnection { session_id: s.clone(), connection_id: c },
            |reply| Command::Disconnect { session_id, connection_id, reply },
        )
    }

    /// Figures of all workers together, and of each in [`RouterStats::workers`].
    pub fn stats(&self) -> Result<RouterStats> {
        let all = self.inner.each(Command::Stats)?;
        Ok(RouterStats::merge(all))
    }

    /// Install (or remove with `None`) the packet tap; see [`crate::TapDirection`]. With
    /// several workers they share it (behind a lock: it is a test hook).
    pub fn set_packet_tap(&self, tap: Option<PacketTap>) -> Result<()> {
        let shared = tap.map(|t| Arc::new(Mutex::new(t)));
        self.inner
            .each(|r| {
                let tap: Option<PacketTap> = shared.clone().map(|t| -> PacketTap {
                    Box::new(move |dir, data| {
                        if let Ok(t) = t.lock() {
                            t(dir, data)
                        }
                    })
                });
                Command::SetTap(tap, r)
            })
            .map(|_| ())
    }

    /// Replace where events go (for hosts that learn their sink after starting the router,
    /// like the server's `MediaRouter::start`). Events before this went to the previous sink.
    pub fn set_event_sink(&self, sink: Option<EventSink>) -> Result<()> {
        let shared = sink.map(crate::config::shared_sink);
        self.inner.each(|r| Command::SetEventSink(shared.as_ref().map(|s| s()), r)).map(|_| ())
    }

    /// Test hook: every worker sleeps this long each time its loop wakes, before it reads its
    /// sockets — a router starved of CPU, on demand. Zero turns it off.
    #[doc(hidden)]
    pub fn stall_loop_for_tests(&self, stall: std::time::Duration) -> Result<()> {
        self.inner.each(|r| Command::Stall(stall, r)).map(|_| ())
    }

    /// The bound socket addresses of every worker (with the ports picked for port 0), worker
    /// by worker, each worker's in the order of `RouterConfig::bind`.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.inner.workers.iter().flat_map(|w| w.local_addrs.iter().copied()).collect()
    }

    /// Each worker's bound socket addresses.
    pub fn worker_addrs(&self) -> Vec<Vec<SocketAddr>> {
        self.inner.workers.iter().map(|w| w.local_addrs.clone()).collect()
    }

    /// The worker a session is placed on, while it has connections.
    pub fn worker_of(&self, session_id: &str) -> Option<usize> {
        self.inner.placement.find(session_id)
    }

    /// Stop the workers and wait for them; every peer connection is dropped. Later calls
    /// on any clone return [`RouterError::Stopped`].
    pub fn shutdown(&self) {
        self.inner.stop();
    }
}
