//! The router thread: one sans-IO loop over every peer connection. It waits in poll(2) for a
//! datagram, a command or the earliest str0m deadline; routes a datagram to its connection
//! through the demux maps; and forwards each publisher frame to that stream's subscribers.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use str0m::bwe::Bitrate;
use str0m::change::SdpOffer;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, Mid, Rid, Rids};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, Input, Rtc};

use crate::batch::{self, RecvBatch};
use crate::config::{EventSink, RouterConfig};
use crate::conn::{Conn, DrainCtx, Layer, Outbox, Publisher, Role, Route, Subscriber, Track, Work, drain};
use crate::demux::{ConnId, Demux, Resolved};
use crate::error::{Result, RouterError};
use crate::events::{CloseReason, RouterEvent, RouterEventKind, Target};
use crate::handle::{Command, PublishSpec, SubscribeSpec};
use crate::placement::Placement;
use crate::sender::SendPath;
use crate::sockets::{self, RouterSocket, Sockets};
use crate::speaker::SpeakerDetector;
use crate::stats::{Counters, LatencyHistogram, RouterStats, WorkerStats};
use crate::tap::{PacketTap, TapDirection};
use crate::timers::Timers;

mod forward;
mod layers;
mod overload;
mod setup;

pub(crate) use overload::backlog;

/// Datagrams read from one socket before timers and commands get a turn, so a flood on one
/// family cannot starve the rest.
const RECV_BATCH: usize = 256;
/// Upper bound of one wait, so housekeeping runs even when nothing happens.
const MAX_WAIT: Duration = Duration::from_millis(200);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Layer choice, dynacast and the active speaker are looked at this often.
const LAYERS_EVERY: Duration = Duration::from_millis(100);
/// A datagram handled this long after it reached the kernel means the loop is behind.
const LOOP_LAG_WARN: Duration = Duration::from_millis(50);
/// At most one warning of each kind per this interval, however bad things are.
const WARN_EVERY: Duration = Duration::from_secs(5);

type Key = (String, String);

/// An audio/video section of an offer as the router answered it (directions are the
/// router's: a publisher's section is RecvOnly here).
struct Section {
    mid: Mid,
    kind: MediaKind,
    direction: Direction,
    /// With simulcast, the layers the publisher offers, in its order (smallest first).
    rids: Vec<Rid>,
}

struct Settings {
    bwe_initial_bps: Option<u64>,
    bwe_desired_bps: u64,
    bwe_every_subscription: bool,
    keyframe_request_interval: Duration,
    rtx_history_packets: usize,
    connect_timeout: Duration,
    max_queue_delay: Duration,
    max_queue_bytes: usize,
    max_queue_packets: usize,
}

/// What went wrong since the last warning, for the rate-limited warn lines.
#[derive(Default)]
struct Report {
    last: Option<Instant>,
    late_datagrams: u64,
    worst_lag: Duration,
    episodes: u64,
    dropped: u64,
}

pub struct Engine {
    /// Which media worker this is (see `handle.rs`).
    index: usize,
    placement: Placement,
    sockets: Sockets,
    candidates: Vec<Candidate>,
    cert: DtlsCert,
    crypto: Arc<CryptoProvider>,
    settings: Settings,
    on_event: Option<EventSink>,
    tap: Option<PacketTap>,
    /// Boxed: an `Rtc` is large and connections are moved out and back in around each drain.
    conns: HashMap<ConnId, Box<Conn>>,
    demux: Demux,
    /// (session, stream id) → publisher connection.
    streams: HashMap<Key, ConnId>,
    /// (session, subscription id) → subscriber connection.
    subscriptions: HashMap<Key, ConnId>,
    /// (session, signaling connection id) → its peer connections, for `disconnect`.
    owners: HashMap<Key, Vec<ConnId>>,
    timers: Timers,
    work: VecDeque<Work>,
    /// What str0m transmitted since the last flush (see `batch`).
    outbox: Outbox,
    /// Where the outbox goes: the kernel, through the worker's send thread (`sender`).
    send: SendPath,
    /// Kernel arrival of the earliest packet forwarded since the last flush, for
    /// `forward_latency`.
    forwarded_since: Option<Instant>,
    /// The group of publisher packets being forwarded, reused across groups.
    inbound: Vec<forward::Inbound>,
    /// The subscriber list of the packet being forwarded, reused across packets.
    fanout: Vec<ConnId>,
    next_id: u64,
    /// Counters of connections already closed, so totals never go backwards.
    closed: Counters,
    unrouted: u64,
    loop_lag: LatencyHistogram,
    late_datagrams: u64,
    report: Report,
    last_housekeeping: Instant,
    /// Test hook: sleep this long each time the loop wakes (see `stall_loop_for_tests`).
    stall: Duration,
    /// The connection being mutated right now (taken out of `conns`), so a panic inside str0m
    /// can be pinned on it; see [`Engine::guarded`].
    current: Option<ConnId>,
    /// Who each connection belongs to, kept apart from `conns` so a connection lost in a panic
    /// can still be reported.
    labels: HashMap<ConnId, Label>,
    /// Per session: who speaks (see `speaker`).
    speakers: HashMap<String, SpeakerDetector<ConnId>>,
    last_layers: Instant,
}

/// Enough to report on a connection without its state.
struct Label {
    session_id: String,
    connection_id: String,
    target: Target,
}

impl Engine {
    pub fn new(config: RouterConfig, index: usize, placement: Placement, waker: UnixDatagram) -> Result<Engine> {
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
        if max_queue_delay.is_zero() || max_queue_bytes == 0 || max_queue_packets == 0 {
            return Err(RouterError::Config(
                "max_queue_delay, max_queue_bytes and max_queue_packets must be above zero".into(),
            ));
        }
        if rtx_history_packets == 0 {
            return Err(RouterError::Config("rtx_history_packets must be at least 1".into()));
        }
        if bind.is_empty() {
            return Err(RouterError::Config("no bind address".into()));
        }
        let (mut v4, mut v6): (Option<RouterSocket>, Option<RouterSocket>) = (None, None);
        for addr in bind {
            let slot = if addr.is_ipv4() { &mut v4 } else { &mut v6 };
            if slot.is_some() {
                return Err(RouterError::Config(format!(
                    "more than one bind address for the family of {addr}: one socket per family"
                )));
            }
            let socket = sockets::bind(addr)?;
            let local = socket.local_addr().map_err(|source| RouterError::Bind { addr, source })?;
            *slot = Some(RouterSocket { socket, local, candidate_addr: local });
        }

        let advertised = advertised.unwrap_or_else(|| v4.iter().chain(v6.iter()).map(|s| s.local).collect());
        if advertised.is_empty() {
            return Err(RouterError::Config("nothing to advertise".into()));
        }
        let mut candidates = Vec::new();
        let (mut first_v4, mut first_v6) = (None, None);
        for mut addr in advertised {
            let (socket, first) = if addr.is_ipv4() { (&v4, &mut first_v4) } else { (&v6, &mut first_v6) };
            let Some(socket) = socket else {
                return Err(RouterError::Config(format!("advertised {addr} but no socket of its family is bound")));
            };
            if addr.ip().is_unspecified() {
                return Err(RouterError::Config(format!(
                    "cannot advertise the unspecified address {addr}: set `advertised`"
                )));
            }
            if addr.port() == 0 {
                addr.set_port(socket.local.port());
            }
            let candidate = Candidate::host(addr, "udp")
                .map_err(|e| RouterError::Config(format!("advertised address {addr}: {e}")))?;
            candidates.push(candidate);
            first.get_or_insert(addr);
        }
        if let (Some(s), Some(a)) = (v4.as_mut(), first_v4) {
            s.candidate_addr = a;
        }
        if let (Some(s), Some(a)) = (v6.as_mut(), first_v6) {
            s.candidate_addr = a;
        }

        // One DTLS certificate for the router's life: generating one per connection would cost
        // a key generation per join, and the fingerprint is per answer anyway.
        let crypto = Arc::new(str0m::crypto::from_feature_flags());
        let cert = crypto
            .dtls_provider
            .generate_certificate()
            .ok_or_else(|| RouterError::Config("the crypto provider cannot make a DTLS certificate".into()))?;

        let clone = |s: &Option<RouterSocket>| -> Result<Option<std::net::UdpSocket>> {
            s.as_ref()
                .map(|s| s.socket.try_clone().map_err(|source| RouterError::Bind { addr: s.local, source }))
                .transpose()
        };
        let send = SendPath::new(clone(&v4)?, clone(&v6)?, send_thread.then(|| format!("umbra-send-{index}")));
        Ok(Engine {
            index,
            placement,
            sockets: Sockets { v4, v6, waker },
            candidates,
            cert,
            crypto,
            settings: Settings {
                bwe_initial_bps,
                bwe_desired_bps,
                bwe_every_subscription,
                keyframe_request_interval,
                rtx_history_packets,
                connect_timeout,
                max_queue_delay,
                max_queue_bytes,
                max_queue_packets,
            },
            on_event,
            tap: None,
            conns: HashMap::new(),
            demux: Demux::default(),
            streams: HashMap::new(),
            subscriptions: HashMap::new(),
            owners: HashMap::new(),
            timers: Timers::default(),
            work: VecDeque::new(),
            outbox: Outbox::default(),
            send,
            forwarded_since: None,
            inbound: Vec::new(),
            fanout: Vec::new(),
            next_id: 1,
            closed: Counters::default(),
            unrouted: 0,
            loop_lag: LatencyHistogram::default(),
            late_datagrams: 0,
            report: Report::default(),
            last_housekeeping: Instant::now(),
            current: None,
            labels: HashMap::new(),
            stall: Duration::ZERO,
            speakers: HashMap::new(),
            last_layers: Instant::now(),
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets.v4.iter().chain(self.sockets.v6.iter()).map(|s| s.local).collect()
    }

    pub fn run(mut self, commands: Receiver<Command>) {
        let mut batch = Box::<RecvBatch>::default();
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return self.close_all();
                    }
                    Ok(cmd) => self.guarded("handling a command", |e| e.command(cmd)),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.guarded("firing timers", |e| e.fire_timers());
            let now = Instant::now();
            if now.duration_since(self.last_housekeeping) >= HOUSEKEEPING_EVERY {
                self.guarded("housekeeping", |e| e.housekeeping(now));
            }
            if now.duration_since(self.last_layers) >= LAYERS_EVERY {
                self.last_layers = now;
                self.guarded("choosing layers", |e| e.layers_tick(now));
            }
            self.flush();
            let wait = self
                .timers
                .next()
                .map(|t| t.saturating_duration_since(Instant::now()))
                .unwrap_or(MAX_WAIT)
                .min(MAX_WAIT);
            let ready = match self.sockets.wait(wait) {
                Ok(r) => r,
                Err(e) => {
                    // poll(2) only fails on programming errors or resource exhaustion; back off
                    // rather than spin, and keep serving.
                    tracing::error!("poll failed: {e}");
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            if ready.waker {
                self.sockets.drain_waker();
            }
            if !self.stall.is_zero() {
                std::thread::sleep(self.stall);
            }
            if ready.v4 {
                self.guarded("receiving", |e| e.read_socket(true, &mut batch));
            }
            if ready.v6 {
                self.guarded("receiving", |e| e.read_socket(false, &mut batch));
            }
            self.flush();
        }
    }

    /// Run one unit of work (a command, a batch of datagrams, the due timers) so that a panic
    /// inside it — a bug in str0m or here, triggered by one peer's input — costs that peer its
    /// connection instead of stopping media for everyone.
    fn guarded(&mut self, what: &str, f: impl FnOnce(&mut Engine)) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if let Err(panic) = result {
            let msg = panic_message(&*panic);
            tracing::error!("media router: panic while {what}: {msg}");
            self.contain_panic(&msg);
        }
    }

    /// Like [`Engine::guarded`] for a request with a reply: the caller gets
    /// [`RouterError::Internal`] rather than a dropped reply.
    fn catching<T>(&mut self, f: impl FnOnce(&mut Engine) -> Result<T>) -> Result<T> {
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(panic) => {
                let msg = panic_message(&*panic);
                tracing::error!("media router: panic in a request: {msg}");
                self.contain_panic(&msg);
                Err(RouterError::Internal(msg))
            }
        }
    }

    fn contain_panic(&mut self, msg: &str) {
        if let Some(id) = self.current.take() {
            self.purge(id, msg);
        }
    }

    /// Remove a connection a panic left in an unknown state, or lost entirely (it was out of
    /// `conns` while being mutated). The scans here run only after a panic.
    fn purge(&mut self, id: ConnId, msg: &str) {
        let reason = format!("internal error in the media router: {msg}");
        if self.conns.contains_key(&id) {
            self.close(id, Some(RouterEventKind::Failed(reason)));
            return;
        }
        if let Some(label) = self.labels.remove(&id) {
            self.placement.release(&label.session_id);
            self.emit(RouterEvent {
                session_id: label.session_id,
                connection_id: label.connection_id,
                target: label.target,
                kind: RouterEventKind::Failed(reason),
            });
        }
        self.demux.purge(id);
        self.streams.retain(|_, c| *c != id);
        self.subscriptions.retain(|_, c| *c != id);
        for ids in self.owners.values_mut() {
            ids.retain(|c| *c != id);
        }
        self.owners.retain(|_, ids| !ids.is_empty());
        let orphans: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(&c.role, Role::Subscriber(s) if s.publisher == id))
            .map(|(sid, _)| *sid)
            .collect();
        for sub in orphans {
            self.close(sub, Some(RouterEventKind::Closed(CloseReason::StreamEnded)));
        }
        for c in self.conns.values_mut() {
            if let Role::Publisher(p) = &mut c.role {
                p.subscribers.retain(|s| *s != id);
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        // A reply fails only when the caller gave up waiting; nothing to do about that.
        match cmd {
            Command::Publish(spec, reply) => {
                let r = self.catching(|e| e.publish(spec));
                let _ = reply.send(r);
            }
            Command::Subscribe(spec, reply) => {
                let r = self.catching(|e| e.subscribe(spec));
                let _ = reply.send(r);
            }
            Command::AddCandidate { session_id, target, candidate, reply } => {
                let r = self.catching(|e| e.add_candidate(session_id, target, &candidate));
                let _ = reply.send(r);
            }
            Command::Unpublish { session_id, stream_id, reply } => {
                let r = match self.streams.get(&(session_id.clone(), stream_id.clone())) {
                    Some(&id) => {
                        self.close(id, None);
                        Ok(())
                    }
                    None => Err(RouterError::UnknownStream { session_id, stream_id }),
                };
                let _ = reply.send(r);
            }
            Command::Unsubscribe { session_id, subscription_id, reply } => {
                let r = match self.subscriptions.get(&(session_id.clone(), subscription_id.clone())) {
                    Some(&id) => {
                        self.close(id, None);
                        Ok(())
                    }
                    None => Err(RouterError::UnknownSubscription { session_id, subscription_id }),
                };
                let _ = reply.send(r);
            }
            Command::Disconnect { session_id, connection_id, reply } => {
                let r = match self.owners.get(&(session_id.clone(), connection_id.clone())) {
                    Some(ids) => {
                        for id in ids.clone() {
                            self.close(id, None);
                        }
                        Ok(())
                    }
                    None => Err(RouterError::UnknownConnection { session_id, connection_id }),
                };
                let _ = reply.send(r);
            }
            Command::SetVideoWish { session_id, subscription_id, wish, reply } => {
                let r = match self.subscriptions.get(&(session_id.clone(), subscription_id.clone())) {
                    Some(&id) => {
                        let publisher = match self.conns.get_mut(&id).map(|c| &mut c.role) {
                            Some(Role::Subscriber(s)) => {
                                s.wish = wish;
                                Some(s.publisher)
                            }
                            _ => None,
                        };
                        if let Some(p) = publisher {
                            self.choose_layers(p, Instant::now());
                        }
                        Ok(())
                    }
                    None => Err(RouterError::UnknownSubscription { session_id, subscription_id }),
                };
                let _ = reply.send(r);
            }
            Command::Stats(reply) => {
                let _ = reply.send(Ok(self.stats()));
            }
            Command::SetTap(tap, reply) => {
                self.tap = tap;
                let _ = reply.send(Ok(()));
            }
            Command::SetEventSink(sink, reply) => {
                self.on_event = sink;
                let _ = reply.send(Ok(()));
            }
            Command::Stall(stall, reply) => {
                self.stall = stall;
                let _ = reply.send(Ok(()));
            }
            Command::Shutdown => {}
        }
        let now = Instant::now();
        self.run_work(now);
    }

    // ---------------------------------------------------------------- the hot path

    fn ctx(&mut self, now: Instant) -> DrainCtx<'_> {
        self.ctx_arrived(now, now)
    }

    fn ctx_arrived(&mut self, _now: Instant, arrived: Instant) -> DrainCtx<'_> {
        DrainCtx { outbox: &mut self.outbox, tap: &self.tap, work: &mut self.work, timers: &mut self.timers, arrived }
    }

    fn read_socket(&mut self, v4: bool, batch: &mut RecvBatch) {
        for _ in 0..RECV_BATCH.div_ceil(batch::BATCH) {
            let socket = if v4 { self.sockets.v4.as_ref() } else { self.sockets.v6.as_ref() };
            let Some(socket) = socket else { return };
            let destination = socket.candidate_addr;
            let n = match batch.recv(&socket.socket) {
                Ok(0) => return,
                Ok(n) => n,
                Err(e) => {
                    // ICMP errors (port unreachable from a client that left) surface here on
                    // Linux; they concern one remote, not the socket.
                    tracing::debug!("recvmmsg: {e}");
                    continue;
                }
            };
            for i in 0..n {
                let Some(d) = batch.get(i) else { continue };
                let now = Instant::now();
                // Wall clock against wall clock (the kernel stamps CLOCK_REALTIME); a clock step
                // backwards reads as no lag rather than a huge one.
                let lag = d.at.and_then(|t| std::time::SystemTime::now().duration_since(t).ok()).unwrap_or_default();
                self.note_lag(lag);
                let arrived = now.checked_sub(lag).unwrap_or(now);
                self.datagram(d.source, destination, d.data, arrived);
            }
            // The work of the whole batch at once: the packets of one publisher that came in
            // together are written to each subscriber before it is drained once (`forward`),
            // and what they fan out leaves in one sendmmsg. The batch is what was already
            // waiting in the socket, so this delays no packet behind one that had not arrived.
            self.run_work(Instant::now());
            self.flush();
            if n < batch::BATCH {
                return;
            }
        }
    }

    /// Hand everything str0m transmitted since the last flush to the kernel (through the
    /// send thread), and with it the mark that ends the forwarded group's latency.
    fn flush(&mut self) {
        let since = self.forwarded_since.take();
        if !self.outbox.items.is_empty() || since.is_some() {
            self.send_outbox(since, false);
        }
    }

    /// Hand the outbox to the kernel. `chunk`: called in the middle of a large fan-out (see
    /// `forward`), more copies to follow, so the send thread takes these while the worker
    /// protects the next ones.
    fn send_outbox(&mut self, forwarded_since: Option<Instant>, chunk: bool) {
        let datagrams = std::mem::replace(&mut self.outbox.items, Vec::with_capacity(batch::BATCH));
        self.send.send(datagrams, forwarded_since, chunk);
    }

    /// Send failures onto the connections' counters.
    fn count_send_failures(&mut self, failed: &[ConnId]) {
        for id in failed {
            if let Some(c) = self.conns.get_mut(id) {
                c.counters.send_errors += 1;
            }
        }
    }

    fn note_lag(&mut self, lag: Duration) {
        self.loop_lag.record(lag);
        if lag >= LOOP_LAG_WARN {
            self.late_datagrams += 1;
            self.report.late_datagrams += 1;
            self.report.worst_lag = self.report.worst_lag.max(lag);
        }
    }

    fn datagram(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8], arrived: Instant) {
        let now = Instant::now();
        if let Some(tap) = &self.tap {
            tap(TapDirection::Received, data);
        }
        let Some(resolved) = self.demux.resolve(source, data) else {
            self.unrouted += 1;
            return;
        };
        let id = resolved.conn();
        let Ok(contents) = DatagramRecv::try_from(data) else {
            self.unrouted += 1;
            return;
        };
        let Some(mut conn) = self.conns.remove(&id) else {
            self.unrouted += 1;
            return;
        };
        self.current = Some(id);
        let input = Input::Receive(now, Receive { proto: Protocol::Udp, source, destination, contents });
        // The gate of `demux.rs`: a check whose MESSAGE-INTEGRITY does not verify with this
        // connection's password (a forged check with a sniffed ufrag), or any other datagram
        // from an address str0m has no succeeded pair for, is dropped here, before any of the
        // connection's ICE/DTLS/SRTP state sees it. `accepts` only reads.
        if !conn.rtc.accepts(&input) {
            conn.counters.packets_refused += 1;
            self.conns.insert(id, conn);
            self.current = None;
            return;
        }
        if let Some(tap) = &self.tap {
            tap(TapDirection::Delivered, data);
        }
        conn.counters.packets_in += 1;
        conn.counters.bytes_in += data.len() as u64;
        if let Err(e) = conn.rtc.handle_input(input) {
            // A malformed or unauthenticated packet (SRTP that fails its auth tag, ...):
            // str0m drops it; the connection stays.
            tracing::debug!("input from {source} refused: {e}");
        }
        if let Resolved::Check(_) = resolved
            && self.demux.verified(source, id)
        {
            tracing::debug!("connection {id:?}: verified remote address {source}");
        }
        let mut ctx = self.ctx_arrived(now, arrived);
        drain(id, &mut conn, &mut ctx);
        self.conns.insert(id, conn);
        self.current = None;
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        // Bounded so a connection that keeps returning a past deadline cannot hold the thread.
        let mut budget = self.conns.len() + 16;
        while budget > 0 {
            let Some((at, id)) = self.timers.pop_due(now) else {
                break;
            };
            budget -= 1;
            let Some(mut conn) = self.conns.remove(&id) else {
                continue;
            };
            self.current = Some(id);
            if conn.deadline == Some(at) {
                conn.deadline = None;
                if let Err(e) = conn.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!("timeout handling failed: {e}");
                }
                let mut ctx = self.ctx(now);
                drain(id, &mut conn, &mut ctx);
            }
            self.conns.insert(id, conn);
            self.current = None;
            self.run_work(now);
        }
    }

    fn housekeeping(&mut self, now: Instant) {
        self.last_housekeeping = now;
        // Once a second, not per packet: connections that never came up.
        let stale: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                !c.connected && !c.failing && now.duration_since(c.created) > self.settings.connect_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let secs = self.settings.connect_timeout.as_secs_f32();
            self.work.push_back(Work::Failed(id, format!("ICE/DTLS not connected within {secs:.0} s")));
        }
        self.run_work(now);
        let failed = self.send.failures();
        self.count_send_failures(&failed);
        self.warn_if_behind(now);
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            self.timers.rebuild(self.conns.iter().filter_map(|(id, c)| c.deadline.map(|d| (d, *id))));
        }
    }

    /// The log lines of overload, at most one per `WARN_EVERY`, summing up what happened since
    /// the last one (a warning per dropped frame would flood the log exactly when the machine
    /// has least to spare).
    fn warn_if_behind(&mut self, now: Instant) {
        let r = &mut self.report;
        if r.late_datagrams == 0 && r.episodes == 0 {
            return;
        }
        if r.last.is_some_and(|t| now.duration_since(t) < WARN_EVERY) {
            return;
        }
        if r.late_datagrams > 0 {
            tracing::warn!(
                late_datagrams = r.late_datagrams,
                worst_lag_ms = r.worst_lag.as_millis() as u64,
                "media router loop is falling behind: datagrams waited in the socket before being handled"
            );
        }
        if r.episodes > 0 {
            tracing::warn!(
                subscribers_fell_behind = r.episodes,
                frames_dropped = r.dropped,
                max_queue_delay_ms = self.settings.max_queue_delay.as_millis() as u64,
                "media router: subscribers fell behind; stale frames dropped and keyframes requested instead"
            );
        }
        *r = Report { last: Some(now), ..Report::default() };
    }

    fn run_work(&mut self, now: Instant) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Packet { from, mid, rid, packet, received } => {
                    // Consecutive packets of the same publisher go out as one group.
                    let mut group = std::mem::take(&mut self.inbound);
                    group.clear();
                    group.push(forward::Inbound { mid, rid, layer: 0, tid: None, svc: None, packet, received });
                    while let Some(Work::Packet { from: next, .. }) = self.work.front()
                        && *next == from
                    {
                        if let Some(Work::Packet { mid, rid, packet, received, .. }) = self.work.pop_front() {
                            group.push(forward::Inbound { mid, rid, layer: 0, tid: None, svc: None, packet, received });
                        }
                    }
                    self.forward(from, &mut group);
                    group.clear();
                    self.inbound = group;
                }
                Work::KeyframeRequest { from, req } => {
                    let Some(Role::Subscriber(s)) = self.conns.get(&from).map(|c| &c.role) else {
                        continue;
                    };
                    let Some(route) = s.routes.iter().find(|r| r.sub_mid == req.mid) else {
                        continue;
                    };
                    // The layer it receives, or is about to; a paused route needs none.
                    let Some(layer) = route.sel.current.or(route.sel.target.map(|t| t.layer)) else {
                        continue;
                    };
                    let (publisher, pub_mid) = (s.publisher, route.pub_mid);
                    self.request_keyframe(publisher, pub_mid, layer, req.kind, true, now);
                }
                Work::Connected(id) => self.connected(id, now),
                Work::Failed(id, reason) => self.close(id, Some(RouterEventKind::Failed(reason))),
            }
        }
    }

    fn stats(&mut self) -> RouterStats {
        // Waits for the send thread, so what a caller sent before asking is counted.
        let sent = self.send.settle();
        self.count_send_failures(&sent.failed);
        let mut totals = self.closed;
        let connections: Vec<_> = self.conns.values_mut().map(|c| c.stats()).collect();
        for c in &connections {
            totals.add(&c.counters);
        }
        let send_cpu = self.send.thread_cpu();
        let cpu = sockets::thread_cpu_time() + send_cpu;
        let worker = WorkerStats {
            index: self.index,
            local_addrs: self.local_addrs(),
            connections: connections.len(),
            thread_cpu: cpu,
            send_thread_cpu: send_cpu,
            packets_in: totals.packets_in,
            packets_out: totals.packets_out,
            frames_forwarded: totals.frames_forwarded,
            sent: sent.counts,
        };
        RouterStats {
            totals,
            connections,
            published_streams: self.streams.len(),
            subscriptions: self.subscriptions.len(),
            unrouted_packets: self.unrouted,
            forward_latency: sent.latency,
            router_thread_cpu: cpu,
            loop_lag: self.loop_lag.clone(),
            late_datagrams: self.late_datagrams,
            demux_sizes: self.demux.sizes(),
            workers: vec![worker],
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}
