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
use str0m::media::{Direction, KeyframeRequestKind, MediaData, MediaKind, Mid, Rid, Rids};
use str0m::net::{DatagramRecv, Protocol, Receive};
use str0m::{Candidate, IceCreds, Input, Rtc};

use crate::config::{EventSink, RouterConfig};
use crate::conn::{Conn, DrainCtx, Publisher, Role, Route, Subscriber, Track, Work, drain};
use crate::demux::{ConnId, Demux};
use crate::error::{Result, RouterError};
use crate::events::{CloseReason, RouterEvent, RouterEventKind, Target};
use crate::handle::{Command, PublishSpec, SubscribeSpec};
use crate::sockets::{self, RouterSocket, Sockets};
use crate::stats::{Counters, LatencyHistogram, RouterStats};
use crate::tap::{PacketTap, TapDirection};
use crate::timers::Timers;

/// Datagrams read from one socket before timers and commands get a turn, so a flood on one
/// family cannot starve the rest.
const RECV_BATCH: usize = 256;
/// Upper bound of one wait, so housekeeping runs even when nothing happens.
const MAX_WAIT: Duration = Duration::from_millis(200);
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(1);
/// Largest datagram we accept; WebRTC keeps well under the Ethernet MTU.
const RECV_BUF: usize = 2048;

type Key = (String, String);

/// An audio/video section of an offer as the router answered it (directions are the
/// router's: a publisher's section is RecvOnly here).
struct Section {
    mid: Mid,
    kind: MediaKind,
    direction: Direction,
    /// With simulcast, the first layer the publisher offers.
    rid: Option<Rid>,
}

struct Settings {
    bwe_initial_bps: Option<u64>,
    bwe_desired_bps: u64,
    keyframe_request_interval: Duration,
    rtx_history_packets: usize,
    connect_timeout: Duration,
}

pub struct Engine {
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
    next_id: u64,
    /// Counters of connections already closed, so totals never go backwards.
    closed: Counters,
    unrouted: u64,
    latency: LatencyHistogram,
    last_housekeeping: Instant,
}

impl Engine {
    pub fn new(config: RouterConfig, waker: UnixDatagram) -> Result<Engine> {
        let RouterConfig {
            bind,
            advertised,
            bwe_initial_bps,
            bwe_desired_bps,
            keyframe_request_interval,
            rtx_history_packets,
            connect_timeout,
            on_event,
        } = config;
        if rtx_history_packets == 0 {
            return Err(RouterError::Config(
                "rtx_history_packets must be at least 1".into(),
            ));
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
            let local = socket
                .local_addr()
                .map_err(|source| RouterError::Bind { addr, source })?;
            *slot = Some(RouterSocket {
                socket,
                local,
                candidate_addr: local,
            });
        }

        let advertised =
            advertised.unwrap_or_else(|| v4.iter().chain(v6.iter()).map(|s| s.local).collect());
        if advertised.is_empty() {
            return Err(RouterError::Config("nothing to advertise".into()));
        }
        let mut candidates = Vec::new();
        let (mut first_v4, mut first_v6) = (None, None);
        for mut addr in advertised {
            let (socket, first) = if addr.is_ipv4() {
                (&v4, &mut first_v4)
            } else {
                (&v6, &mut first_v6)
            };
            let Some(socket) = socket else {
                return Err(RouterError::Config(format!(
                    "advertised {addr} but no socket of its family is bound"
                )));
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
        let cert = crypto.dtls_provider.generate_certificate().ok_or_else(|| {
            RouterError::Config("the crypto provider cannot make a DTLS certificate".into())
        })?;

        Ok(Engine {
            sockets: Sockets { v4, v6, waker },
            candidates,
            cert,
            crypto,
            settings: Settings {
                bwe_initial_bps,
                bwe_desired_bps,
                keyframe_request_interval,
                rtx_history_packets,
                connect_timeout,
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
            next_id: 1,
            closed: Counters::default(),
            unrouted: 0,
            latency: LatencyHistogram::default(),
            last_housekeeping: Instant::now(),
        })
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.sockets
            .v4
            .iter()
            .chain(self.sockets.v6.iter())
            .map(|s| s.local)
            .collect()
    }

    pub fn run(mut self, commands: Receiver<Command>) {
        let mut buf = vec![0u8; RECV_BUF];
        loop {
            loop {
                match commands.try_recv() {
                    Ok(Command::Shutdown) | Err(TryRecvError::Disconnected) => {
                        return self.close_all();
                    }
                    Ok(cmd) => self.command(cmd),
                    Err(TryRecvError::Empty) => break,
                }
            }
            self.fire_timers();
            let now = Instant::now();
            if now.duration_since(self.last_housekeeping) >= HOUSEKEEPING_EVERY {
                self.housekeeping(now);
            }
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
            if ready.v4 {
                self.read_socket(true, &mut buf);
            }
            if ready.v6 {
                self.read_socket(false, &mut buf);
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        // A reply fails only when the caller gave up waiting; nothing to do about that.
        match cmd {
            Command::Publish(spec, reply) => {
                let _ = reply.send(self.publish(spec));
            }
            Command::Subscribe(spec, reply) => {
                let _ = reply.send(self.subscribe(spec));
            }
            Command::AddCandidate {
                session_id,
                target,
                candidate,
                reply,
            } => {
                let _ = reply.send(self.add_candidate(session_id, target, &candidate));
            }
            Command::Unpublish {
                session_id,
                stream_id,
                reply,
            } => {
                let r = match self.streams.get(&(session_id.clone(), stream_id.clone())) {
                    Some(&id) => {
                        self.close(id, None);
                        Ok(())
                    }
                    None => Err(RouterError::UnknownStream {
                        session_id,
                        stream_id,
                    }),
                };
                let _ = reply.send(r);
            }
            Command::Unsubscribe {
                session_id,
                subscription_id,
                reply,
            } => {
                let r = match self
                    .subscriptions
                    .get(&(session_id.clone(), subscription_id.clone()))
                {
                    Some(&id) => {
                        self.close(id, None);
                        Ok(())
                    }
                    None => Err(RouterError::UnknownSubscription {
                        session_id,
                        subscription_id,
                    }),
                };
                let _ = reply.send(r);
            }
            Command::Disconnect {
                session_id,
                connection_id,
                reply,
            } => {
                let r = match self
                    .owners
                    .get(&(session_id.clone(), connection_id.clone()))
                {
                    Some(ids) => {
                        for id in ids.clone() {
                            self.close(id, None);
                        }
                        Ok(())
                    }
                    None => Err(RouterError::UnknownConnection {
                        session_id,
                        connection_id,
                    }),
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
            Command::Shutdown => {}
        }
        let now = Instant::now();
        self.run_work(now);
    }

    // ---------------------------------------------------------------- set-up and teardown

    fn new_rtc(&mut self, sends_media: bool, now: Instant) -> (Rtc, String) {
        let mut creds = IceCreds::new();
        // 16 random characters make a collision astronomically unlikely, but a collision would
        // route one client's checks to another's connection: re-draw rather than hope.
        while self.demux.has_ufrag(&creds.ufrag) {
            creds = IceCreds::new();
        }
        let ufrag = creds.ufrag.clone();
        let mut config = Rtc::builder()
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_dtls_cert(self.cert.clone())
            .set_crypto_provider(self.crypto.clone())
            // str0m's default RTX history (1000 video packets, ~4 s at 2.5 Mbps) would be the
            // bulk of a subscriber's memory; see `RouterConfig::rtx_history_packets`.
            .set_send_buffer_video(self.settings.rtx_history_packets);
        if sends_media && let Some(bps) = self.settings.bwe_initial_bps {
            config = config.enable_bwe(Some(Bitrate::bps(bps)));
        }
        let mut rtc = config.build(now);
        for c in &self.candidates {
            rtc.add_local_candidate(c.clone());
        }
        if sends_media && self.settings.bwe_initial_bps.is_some() {
            rtc.bwe()
                .set_bitrate(Bitrate::ZERO, Bitrate::bps(self.settings.bwe_desired_bps));
        }
        (rtc, ufrag)
    }

    /// Parse and answer an offer on a fresh connection; returns its audio/video sections as
    /// negotiated (str0m reports `MediaAdded` only once the connection is up, too late to
    /// refuse an unusable offer, so the sections are read from the offer's mids).
    fn answer(
        &mut self,
        sdp: &str,
        sends_media: bool,
        session_id: &str,
        connection_id: &str,
        role: Role,
    ) -> Result<(ConnId, Box<Conn>, String, Vec<Section>)> {
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| RouterError::BadSdp(e.to_string()))?;
        let now = Instant::now();
        let (mut rtc, ufrag) = self.new_rtc(sends_media, now);
        let answer = rtc
            .sdp_api()
            .accept_offer(offer)
            .map_err(|e| RouterError::OfferRefused(e.to_string()))?;
        let sections = sdp
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
            .filter_map(|mid| {
                let media = rtc.media(Mid::from(mid.trim()))?;
                let rid = match media.rids_rx() {
                    Rids::Specific(rids) => rids.first().copied(),
                    _ => None,
                };
                Some(Section {
                    mid: media.mid(),
                    kind: media.kind(),
                    direction: media.direction(),
                    rid,
                })
            })
            .collect();
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let mut conn = Box::new(Conn {
            rtc,
            ufrag,
            session_id: session_id.to_owned(),
            connection_id: connection_id.to_owned(),
            role,
            created: now,
            connected: false,
            failing: false,
            counters: Counters::default(),
            bwe_bps: None,
            deadline: None,
        });
        let mut ctx = self.ctx(now);
        drain(id, &mut conn, &mut ctx);
        Ok((id, conn, answer.to_sdp_string(), sections))
    }

    fn install(&mut self, id: ConnId, conn: Box<Conn>) {
        self.demux.register(id, conn.ufrag.clone());
        self.owners
            .entry((conn.session_id.clone(), conn.connection_id.clone()))
            .or_default()
            .push(id);
        self.conns.insert(id, conn);
    }

    fn publish(&mut self, spec: PublishSpec) -> Result<String> {
        let key = (spec.session_id.clone(), spec.stream_id.clone());
        if self.streams.contains_key(&key) {
            return Err(RouterError::StreamExists {
                session_id: spec.session_id,
                stream_id: spec.stream_id,
            });
        }
        let role = Role::Publisher(Publisher {
            stream_id: spec.stream_id.clone(),
            tracks: Vec::new(),
            subscribers: Vec::new(),
        });
        let (id, mut conn, answer, sections) = self.answer(
            &spec.sdp_offer,
            false,
            &spec.session_id,
            &spec.connection_id,
            role,
        )?;
        let tracks: Vec<Track> = sections
            .into_iter()
            .filter(|m| matches!(m.direction, Direction::RecvOnly | Direction::SendRecv))
            .map(|m| Track {
                mid: m.mid,
                kind: m.kind,
                rid: m.rid,
                last_keyframe_request: None,
            })
            .collect();
        if tracks.is_empty() {
            return Err(RouterError::NoUsableMedia(
                "the publisher's offer sends no audio or video".into(),
            ));
        }
        if let Role::Publisher(p) = &mut conn.role {
            p.tracks = tracks;
        }
        self.install(id, conn);
        self.streams.insert(key, id);
        Ok(answer)
    }

    fn subscribe(&mut self, spec: SubscribeSpec) -> Result<String> {
        let key = (spec.session_id.clone(), spec.subscription_id.clone());
        if self.subscriptions.contains_key(&key) {
            return Err(RouterError::SubscriptionExists {
                session_id: spec.session_id,
                subscription_id: spec.subscription_id,
            });
        }
        let Some(&publisher) = self
            .streams
            .get(&(spec.session_id.clone(), spec.stream_id.clone()))
        else {
            return Err(RouterError::UnknownStream {
                session_id: spec.session_id,
                stream_id: spec.stream_id,
            });
        };
        let role = Role::Subscriber(Subscriber {
            subscription_id: spec.subscription_id.clone(),
            stream_id: spec.stream_id.clone(),
            publisher,
            routes: Vec::new(),
        });
        let (id, mut conn, answer, sections) = self.answer(
            &spec.sdp_offer,
            true,
            &spec.session_id,
            &spec.connection_id,
            role,
        )?;
        let routes = self.routes(publisher, &mut conn, sections)?;
        if let Role::Subscriber(s) = &mut conn.role {
            s.routes = routes;
        }
        self.install(id, conn);
        self.subscriptions.insert(key, id);
        if let Some(Role::Publisher(p)) = self.conns.get_mut(&publisher).map(|c| &mut c.role) {
            p.subscribers.push(id);
        }
        Ok(answer)
    }

    /// Pair the publisher's tracks with the subscriber's sending sections: the n-th publisher
    /// track of a kind goes to the n-th subscriber section of that kind, with the payload
    /// types mapped codec by codec.
    fn routes(
        &mut self,
        publisher: ConnId,
        sub: &mut Conn,
        sections: Vec<Section>,
    ) -> Result<Vec<Route>> {
        let sub_sections: Vec<(Mid, MediaKind)> = sections
            .into_iter()
            .filter(|m| matches!(m.direction, Direction::SendOnly | Direction::SendRecv))
            .map(|m| (m.mid, m.kind))
            .collect();
        let Some(pc) = self.conns.get_mut(&publisher) else {
            return Err(RouterError::Stopped);
        };
        let Role::Publisher(p) = &pc.role else {
            return Err(RouterError::Stopped);
        };
        let tracks: Vec<(Mid, MediaKind)> = p.tracks.iter().map(|t| (t.mid, t.kind)).collect();
        let mut routes = Vec::new();
        let mut used = vec![false; sub_sections.len()];
        for (pub_mid, kind) in tracks {
            let Some(slot) =
                (0..sub_sections.len()).find(|&i| !used[i] && sub_sections[i].1 == kind)
            else {
                continue;
            };
            used[slot] = true;
            let sub_mid = sub_sections[slot].0;
            let pub_params: Vec<_> = match pc.rtc.writer(pub_mid) {
                Some(w) => w.payload_params().cloned().collect(),
                None => continue,
            };
            let Some(sw) = sub.rtc.writer(sub_mid) else {
                continue;
            };
            let sub_pts: Vec<_> = sw.payload_params().map(|p| p.pt()).collect();
            let pts: Vec<_> = pub_params
                .iter()
                .filter_map(|pp| {
                    sw.match_params(*pp)
                        .filter(|pt| sub_pts.contains(pt))
                        .map(|s| (pp.pt(), s))
                })
                .collect();
            if pts.is_empty() {
                tracing::debug!("no common codec for {kind:?} between publisher and subscriber");
                continue;
            }
            routes.push(Route {
                pub_mid,
                sub_mid,
                kind,
                pts,
            });
        }
        if routes.is_empty() {
            return Err(RouterError::NoUsableMedia(
                "the subscriber's offer has no audio/video section that can receive the published tracks \
                 (recvonly, with a codec in common)"
                    .into(),
            ));
        }
        Ok(routes)
    }

    fn add_candidate(&mut self, session_id: String, target: Target, candidate: &str) -> Result<()> {
        let id = match &target {
            Target::Publisher { stream_id } => self
                .streams
                .get(&(session_id.clone(), stream_id.clone()))
                .copied()
                .ok_or_else(|| RouterError::UnknownStream {
                    session_id: session_id.clone(),
                    stream_id: stream_id.clone(),
                })?,
            Target::Subscriber { subscription_id } => self
                .subscriptions
                .get(&(session_id.clone(), subscription_id.clone()))
                .copied()
                .ok_or_else(|| RouterError::UnknownSubscription {
                    session_id: session_id.clone(),
                    subscription_id: subscription_id.clone(),
                })?,
        };
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            // An empty candidate is the browser's end-of-candidates marker.
            return Ok(());
        }
        let c = Candidate::from_sdp_string(line)
            .map_err(|e| RouterError::BadCandidate(e.to_string()))?;
        let now = Instant::now();
        let Some(mut conn) = self.conns.remove(&id) else {
            return Ok(());
        };
        conn.rtc.add_remote_candidate(c);
        let mut ctx = self.ctx(now);
        drain(id, &mut conn, &mut ctx);
        self.conns.insert(id, conn);
        Ok(())
    }

    /// Remove a connection and everything that points at it; a publisher takes its
    /// subscribers with it. `event` is reported for this connection (teardown the caller
    /// asked for reports nothing).
    fn close(&mut self, id: ConnId, event: Option<RouterEventKind>) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        conn.rtc.disconnect();
        self.demux.remove(id, &conn.ufrag);
        self.closed.add(&conn.counters);
        let owner = (conn.session_id.clone(), conn.connection_id.clone());
        if let Some(ids) = self.owners.get_mut(&owner) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.owners.remove(&owner);
            }
        }
        let target = match conn.role {
            Role::Publisher(p) => {
                let key = (conn.session_id.clone(), p.stream_id.clone());
                if self.streams.get(&key) == Some(&id) {
                    self.streams.remove(&key);
                }
                for sub in p.subscribers {
                    self.close(sub, Some(RouterEventKind::Closed(CloseReason::StreamEnded)));
                }
                Target::Publisher {
                    stream_id: p.stream_id,
                }
            }
            Role::Subscriber(s) => {
                let key = (conn.session_id.clone(), s.subscription_id.clone());
                if self.subscriptions.get(&key) == Some(&id) {
                    self.subscriptions.remove(&key);
                }
                if let Some(Role::Publisher(p)) =
                    self.conns.get_mut(&s.publisher).map(|c| &mut c.role)
                {
                    p.subscribers.retain(|x| *x != id);
                }
                Target::Subscriber {
                    subscription_id: s.subscription_id,
                }
            }
        };
        if let Some(kind) = event {
            self.emit(RouterEvent {
                session_id: conn.session_id,
                connection_id: conn.connection_id,
                target,
                kind,
            });
        }
    }

    fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
    }

    fn emit(&mut self, event: RouterEvent) {
        if let Some(sink) = self.on_event.as_mut() {
            sink(event);
        }
    }

    // ---------------------------------------------------------------- the hot path

    fn ctx(&mut self, now: Instant) -> DrainCtx<'_> {
        DrainCtx {
            sockets: &self.sockets,
            tap: &self.tap,
            work: &mut self.work,
            timers: &mut self.timers,
            now,
        }
    }

    fn read_socket(&mut self, v4: bool, buf: &mut [u8]) {
        for _ in 0..RECV_BATCH {
            let socket = if v4 {
                self.sockets.v4.as_ref()
            } else {
                self.sockets.v6.as_ref()
            };
            let Some(socket) = socket else { return };
            let (n, source) = match socket.socket.recv_from(buf) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // ICMP errors (port unreachable from a client that left) surface here on
                    // Linux; they concern one remote, not the socket.
                    tracing::debug!("recv_from: {e}");
                    continue;
                }
            };
            let destination = socket.candidate_addr;
            self.datagram(source, destination, &buf[..n]);
        }
    }

    fn datagram(&mut self, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
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
        conn.counters.packets_in += 1;
        conn.counters.bytes_in += data.len() as u64;
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if let Err(e) = conn.rtc.handle_input(input) {
            // A malformed or unauthenticated packet: str0m drops it; the connection stays.
            tracing::debug!("input from {source} refused: {e}");
        }
        let mut ctx = self.ctx(now);
        drain(id, &mut conn, &mut ctx);
        self.conns.insert(id, conn);
        self.run_work(now);
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
            if conn.deadline == Some(at) {
                conn.deadline = None;
                if let Err(e) = conn.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!("timeout handling failed: {e}");
                }
                let mut ctx = self.ctx(now);
                drain(id, &mut conn, &mut ctx);
            }
            self.conns.insert(id, conn);
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
                !c.connected
                    && !c.failing
                    && now.duration_since(c.created) > self.settings.connect_timeout
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            let secs = self.settings.connect_timeout.as_secs_f32();
            self.work.push_back(Work::Failed(
                id,
                format!("ICE/DTLS not connected within {secs:.0} s"),
            ));
        }
        self.run_work(now);
        if self.timers.len() > 4 * self.conns.len() + 1024 {
            self.timers.rebuild(
                self.conns
                    .iter()
                    .filter_map(|(id, c)| c.deadline.map(|d| (d, *id))),
            );
        }
    }

    fn run_work(&mut self, now: Instant) {
        while let Some(work) = self.work.pop_front() {
            match work {
                Work::Frame {
                    from,
                    data,
                    received,
                } => self.forward(from, data, received),
                Work::KeyframeRequest { from, req } => {
                    let Some(Role::Subscriber(s)) = self.conns.get(&from).map(|c| &c.role) else {
                        continue;
                    };
                    let Some(route) = s.routes.iter().find(|r| r.sub_mid == req.mid) else {
                        continue;
                    };
                    let (publisher, pub_mid) = (s.publisher, route.pub_mid);
                    self.request_keyframe(publisher, pub_mid, req.kind, true, now);
                }
                Work::Connected(id) => self.connected(id, now),
                Work::Failed(id, reason) => self.close(id, Some(RouterEventKind::Failed(reason))),
            }
        }
    }

    fn connected(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let target = match &conn.role {
            Role::Publisher(p) => Target::Publisher {
                stream_id: p.stream_id.clone(),
            },
            Role::Subscriber(s) => Target::Subscriber {
                subscription_id: s.subscription_id.clone(),
            },
        };
        let event = RouterEvent {
            session_id: conn.session_id.clone(),
            connection_id: conn.connection_id.clone(),
            target,
            kind: RouterEventKind::Connected,
        };
        // A new subscriber can decode nothing until the next keyframe: ask for one now rather
        // than wait for the publisher's periodic one (or the subscriber's own PLI).
        let wanted: Vec<(ConnId, Mid)> = match &conn.role {
            Role::Subscriber(s) => s
                .routes
                .iter()
                .filter(|r| r.kind == MediaKind::Video)
                .map(|r| (s.publisher, r.pub_mid))
                .collect(),
            Role::Publisher(_) => Vec::new(),
        };
        self.emit(event);
        for (publisher, mid) in wanted {
            self.request_keyframe(publisher, mid, KeyframeRequestKind::Pli, false, now);
        }
    }

    fn request_keyframe(
        &mut self,
        publisher: ConnId,
        mid: Mid,
        kind: KeyframeRequestKind,
        relayed: bool,
        now: Instant,
    ) {
        let Some(mut pc) = self.conns.remove(&publisher) else {
            return;
        };
        let interval = self.settings.keyframe_request_interval;
        let sent = (|| {
            let Role::Publisher(p) = &mut pc.role else {
                return false;
            };
            let Some(track) = p.tracks.iter_mut().find(|t| t.mid == mid) else {
                return false;
            };
            if track
                .last_keyframe_request
                .is_some_and(|t| now.duration_since(t) < interval)
            {
                pc.counters.keyframe_requests_coalesced += 1;
                return false;
            }
            let rid = track.rid;
            let Some(mut w) = pc.rtc.writer(mid) else {
                return false;
            };
            // Relay the kind asked for when the publisher negotiated it, else the other one.
            let other = match kind {
                KeyframeRequestKind::Pli => KeyframeRequestKind::Fir,
                _ => KeyframeRequestKind::Pli,
            };
            let kind = if w.is_request_keyframe_possible(kind) {
                kind
            } else {
                other
            };
            match w.request_keyframe(rid, kind) {
                Ok(()) => {
                    track.last_keyframe_request = Some(now);
                    true
                }
                Err(e) => {
                    tracing::debug!("keyframe request to publisher failed: {e}");
                    false
                }
            }
        })();
        if sent {
            if relayed {
                pc.counters.keyframe_requests_relayed += 1;
            } else {
                pc.counters.keyframe_requests_originated += 1;
            }
            let mut ctx = self.ctx(now);
            drain(publisher, &mut pc, &mut ctx);
        }
        self.conns.insert(publisher, pc);
    }

    fn forward(&mut self, from: ConnId, data: Box<MediaData>, received: Instant) {
        let Some(pc) = self.conns.get_mut(&from) else {
            return;
        };
        let Role::Publisher(p) = &mut pc.role else {
            return;
        };
        let Some(track) = p.tracks.iter().find(|t| t.mid == data.mid) else {
            return;
        };
        if track.rid != data.rid {
            return;
        }
        let broken_video = track.kind == MediaKind::Video && !data.contiguous;
        pc.counters.frames_in += 1;
        let subscribers = std::mem::take(&mut p.subscribers);
        if let Some(tap) = &self.tap {
            tap(TapDirection::ForwardedFrame, &data.data);
        }
        let now = Instant::now();
        for &sid in &subscribers {
            let Some(mut sc) = self.conns.remove(&sid) else {
                continue;
            };
            if write_frame(&mut sc, &data) {
                sc.counters.frames_forwarded += 1;
                let mut ctx = self.ctx(now);
                drain(sid, &mut sc, &mut ctx);
            } else {
                sc.counters.frames_dropped += 1;
            }
            self.conns.insert(sid, sc);
        }
        if let Some(Role::Publisher(p)) = self.conns.get_mut(&from).map(|c| &mut c.role) {
            // Forwarding queues work but never adds or removes subscribers synchronously.
            p.subscribers = subscribers;
        }
        self.latency.record(received.elapsed());
        if broken_video {
            // A frame that lost packets NACK could not recover: the decoders downstream need a
            // keyframe to resume.
            self.request_keyframe(from, data.mid, KeyframeRequestKind::Pli, false, now);
        }
    }

    fn stats(&self) -> RouterStats {
        let mut totals = self.closed;
        let connections: Vec<_> = self.conns.values().map(|c| c.stats()).collect();
        for c in &connections {
            totals.add(&c.counters);
        }
        RouterStats {
            totals,
            connections,
            published_streams: self.streams.len(),
            subscriptions: self.subscriptions.len(),
            unrouted_packets: self.unrouted,
            forward_latency: self.latency.clone(),
            router_thread_cpu: sockets::thread_cpu_time(),
            demux_sizes: self.demux.sizes(),
        }
    }
}

/// Write one frame on the subscriber's matching section; false when it cannot take it (no
/// route for the track, codec not negotiated, not connected yet).
fn write_frame(sc: &mut Conn, data: &MediaData) -> bool {
    if !sc.connected {
        return false;
    }
    let Role::Subscriber(s) = &sc.role else {
        return false;
    };
    let Some(route) = s.routes.iter().find(|r| r.pub_mid == data.mid) else {
        return false;
    };
    let Some(pt) = route.pt_for(data.pt) else {
        return false;
    };
    let (sub_mid, kind) = (route.sub_mid, route.kind);
    let Some(mut w) = sc.rtc.writer(sub_mid) else {
        return false;
    };
    if kind == MediaKind::Audio {
        if let (Some(level), Some(voice)) =
            (data.ext_vals.audio_level, data.ext_vals.voice_activity)
        {
            w = w.audio_level(level, voice);
        }
        if data.audio_start_of_talk_spurt {
            w = w.start_of_talkspurt(true);
        }
    } else if let Some(o) = data.ext_vals.video_orientation {
        w = w.video_orientation(o);
    }
    match w.write(pt, data.network_time, data.time, data.data.clone()) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("write to subscriber failed: {e}");
            false
        }
    }
}
