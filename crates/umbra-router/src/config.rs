//! How a router is started.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Result, RouterError};
use crate::events::RouterEvent;

/// Called on the router thread for every [`RouterEvent`]. It must not block: hand the event to
/// a channel (a tokio `UnboundedSender::send` is fine) and return.
pub type EventSink = Box<dyn FnMut(RouterEvent) + Send>;

pub struct RouterConfig {
    /// Where to bind: at most one address per family (IPv4, IPv6). Port 0 picks a free port.
    pub bind: Vec<SocketAddr>,
    /// What goes into the host candidates of every answer. `None` advertises the bound
    /// addresses (which then must not be unspecified). A port of 0 means "the port bound for
    /// that family" — useful when binding port 0 behind a known public IP. An advertised
    /// address needs a bound socket of its family; several per family are allowed (e.g. a
    /// public and a private IP for the same socket).
    pub advertised: Option<Vec<SocketAddr>>,
    /// Send-side bandwidth estimation (TWCC) on subscriber connections: the first estimate, in
    /// bits per second. `None` turns BWE (and its pacer) off. A subscription gets it where
    /// its estimate can choose something: see [`bwe_every_subscription`](Self::bwe_every_subscription).
    pub bwe_initial_bps: Option<u64>,
    /// Estimate (and pace) on every subscription, not only where the publisher's video has
    /// layers to choose among. By default (`false`) a subscription to a publisher whose video is
    /// one plain layer — one rid, no codec negotiated that can carry spatial layers (VP9, AV1),
    /// no temporal layers seen so far — or that has no video, is forwarded like Janus and
    /// mediasoup forward such a stream: unpaced and without an estimate, since no decision would
    /// use one. That estimate, with the pacer it brings (str0m 0.25 answers a full
    /// `handle_timeout` of the connection per paced packet), was about a fifth of the router's
    /// CPU per forwarded packet (docs/performance.md, "Estimating only where layers can be
    /// chosen").
    pub bwe_every_subscription: bool,
    /// The rate BWE probes towards on each subscriber connection.
    pub bwe_desired_bps: u64,
    /// Keyframe requests for one publisher track closer together than this are folded into
    /// one: a keyframe is already on its way, and a burst of PLIs from many subscribers joining
    /// at once must not make the publisher send a burst of keyframes.
    pub keyframe_request_interval: Duration,
    /// Packets of retransmission (RTX) history kept per outgoing video stream. It is most of a
    /// subscriber's memory (~1.2 KB a packet); NACKs arrive within a few round trips, so the
    /// default of 600 (~2 s at 2.5 Mbps) is ample.
    pub rtx_history_packets: usize,
    /// A peer connection whose ICE+DTLS is not up this long after its answer is closed and
    /// reported as failed.
    pub connect_timeout: Duration,
    /// The oldest media the router will still send a subscriber (see the `engine::overload`
    /// module): a frame that would wait behind a backlog older than half of this, or that
    /// arrived this late itself, is dropped and the publisher asked for a keyframe instead.
    pub max_queue_delay: Duration,
    /// Bytes of media (and retransmissions) waiting to be sent to one subscriber, over all its
    /// tracks, beyond which new frames are dropped: bounds a subscriber's send-queue memory.
    pub max_queue_bytes: usize,
    /// Packets waiting to be sent to one subscriber beyond which new frames are dropped.
    pub max_queue_packets: usize,
    /// Media worker threads, each with its own sockets and peer connections; a session's
    /// connections all live on one worker (the least loaded when the session's first
    /// connection came). Default: one per core ([`default_media_workers`]). A non-zero port
    /// in `bind` or `advertised` is the first of a range: worker `i` binds and advertises
    /// port + `i`; port 0 lets each worker pick a free port.
    pub media_workers: usize,
    /// Each media worker hands its datagrams to the kernel on a thread of its own, so a large
    /// fan-out's sends overlap with protecting the next copies (see the `sender` module):
    /// about half the router-added latency of a large session when a core is free; the same
    /// CPU in total. `false` sends on the worker itself.
    pub send_thread: bool,
    /// Where events go; `None` drops them.
    pub on_event: Option<EventSink>,
}

impl RouterConfig {
    pub fn new(bind: Vec<SocketAddr>) -> Self {
        RouterConfig {
            bind,
            advertised: None,
            bwe_initial_bps: Some(2_500_000),
            bwe_desired_bps: 10_000_000,
            bwe_every_subscription: false,
            keyframe_request_interval: Duration::from_millis(250),
            rtx_history_packets: 600,
            connect_timeout: Duration::from_secs(30),
            max_queue_delay: Duration::from_millis(200),
            // ~0.8 s of a 2.5 Mbps stream, or six of its keyframes: far more than a healthy
            // subscriber ever has queued (a keyframe's worth at most), small enough that a
            // thousand starved subscribers cost a few hundred MiB at worst.
            max_queue_bytes: 256 * 1024,
            max_queue_packets: 512,
            media_workers: default_media_workers(),
            send_thread: true,
            on_event: None,
        }
    }
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("bind", &self.bind)
            .field("advertised", &self.advertised)
            .field("bwe_initial_bps", &self.bwe_initial_bps)
            .field("bwe_desired_bps", &self.bwe_desired_bps)
            .field("bwe_every_subscription", &self.bwe_every_subscription)
            .field("keyframe_request_interval", &self.keyframe_request_interval)
            .field("rtx_history_packets", &self.rtx_history_packets)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_queue_delay", &self.max_queue_delay)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("max_queue_packets", &self.max_queue_packets)
            .field("media_workers", &self.media_workers)
            .field("send_thread", &self.send_thread)
            .field("on_event", &self.on_event.as_ref().map(|_| "EventSink"))
            .finish()
    }
}

/// One worker per core the process may use (1 when that cannot be told).
pub fn default_media_workers() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// An event sink several workers can share: each gets a box that locks the one sink (events
/// are rare — joins, failures — so the lock costs nothing that matters).
pub(crate) fn shared_sink(sink: EventSink) -> impl Fn() -> EventSink {
    let shared = Arc::new(Mutex::new(sink));
    move || {
        let s = shared.clone();
        Box::new(move |ev| {
            let mut f = s.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(ev)
        })
    }
}

/// The port of `addr` for worker `index`: 0 stays 0 (each worker picks a free port), any other
/// port is the base of a range, one port per worker.
fn worker_port(addr: SocketAddr, index: usize) -> Result<SocketAddr> {
    if addr.port() == 0 {
        return Ok(addr);
    }
    let port = usize::from(addr.port()) + index;
    let port = u16::try_from(port)
        .map_err(|_| RouterError::Config(format!("{addr}: worker {index} would need port {port}, beyond 65535")))?;
    let mut a = addr;
    a.set_port(port);
    Ok(a)
}

/// Split a router's configuration into its workers' (ports shifted by worker index, the event
/// sink shared).
pub(crate) fn per_worker(config: RouterConfig, n: usize) -> Result<Vec<RouterConfig>> {
    if n == 1 {
        return Ok(vec![config]);
    }
    let RouterConfig {
        bind,
        advertised,
        bwe_initial_bps,
        bwe_desired_bps,
        bwe_every_subscription,
        keyframe_request_interval,
        rtx_history_packets,
        connect_timeout,
        max_queue_delay,
        max_queue_bytes,
        max_queue_packets,
        media_workers: _,
        send_thread,
        on_event,
    } = config;
    let sink = on_event.map(shared_sink);
    (0..n)
        .map(|i| {
            Ok(RouterConfig {
                bind: bind.iter().map(|a| worker_port(*a, i)).collect::<Result<_>>()?,
                advertised: match &advertised {
                    Some(a) => Some(a.iter().map(|a| worker_port(*a, i)).collect::<Result<_>>()?),
                    None => None,
                },
                bwe_initial_bps,
                bwe_desired_bps,
                bwe_every_subscription,
                keyframe_request_interval,
                rtx_history_packets,
                connect_timeout,
                max_queue_delay,
                max_queue_bytes,
                max_queue_packets,
                media_workers: 1,
                send_thread,
                on_event: sink.as_ref().map(|s| s()),
            })
        })
        .collect()
}
