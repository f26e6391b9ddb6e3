//! Test clients for the router: real str0m peer connections (full ICE, DTLS, SRTP) on real
//! loopback UDP, all driven by one client thread so many subscribers cost one thread.
#![allow(dead_code)]

pub mod proxy;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};
use umbra_loadgen::pacer::Pacer;

/// Which side of the router a test peer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Publisher,
    Subscriber,
}

#[derive(Debug, Clone)]
pub struct PeerOptions {
    pub side: Side,
    pub audio: bool,
    pub video: bool,
    /// Restrict the offer to one video codec (None: str0m's defaults).
    pub video_codec: Option<Codec>,
    pub bind_ip: IpAddr,
}

impl PeerOptions {
    pub fn publisher(ip: IpAddr) -> Self {
        PeerOptions { side: Side::Publisher, audio: true, video: true, video_codec: None, bind_ip: ip }
    }
    pub fn subscriber(ip: IpAddr) -> Self {
        PeerOptions { side: Side::Subscriber, ..Self::publisher(ip) }
    }
}

/// A peer whose offer is out, waiting for the router's answer.
pub struct PendingPeer {
    rtc: Rtc,
    socket: UdpSocket,
    pending: SdpPendingOffer,
    mids: Vec<(Mid, MediaKind)>,
    pub offer: String,
}

pub fn offer(opts: &PeerOptions) -> PendingPeer {
    let socket = UdpSocket::bind(SocketAddr::new(opts.bind_ip, 0)).expect("bind test peer");
    socket.set_nonblocking(true).unwrap();
    let local = socket.local_addr().unwrap();
    let mut cfg = Rtc::builder();
    if let Some(codec) = opts.video_codec {
        cfg = cfg
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(codec == Codec::Vp8)
            .enable_vp9(codec == Codec::Vp9)
            .enable_h264(codec == Codec::H264)
            .enable_av1(codec == Codec::Av1);
    }
    // Receive statistics (NACKs sent) for tests that check the router's sequence numbers.
    cfg = cfg.set_stats_interval(Some(Duration::from_millis(250)));
    let mut rtc = cfg.build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").unwrap());
    let dir = match opts.side {
        Side::Publisher => Direction::SendOnly,
        Side::Subscriber => Direction::RecvOnly,
    };
    let mut api = rtc.sdp_api();
    let mut mids = Vec::new();
    if opts.audio {
        mids.push((api.add_media(MediaKind::Audio, dir, Some("s".into()), None, None), MediaKind::Audio));
    }
    if opts.video {
        mids.push((api.add_media(MediaKind::Video, dir, Some("s".into()), None, None), MediaKind::Video));
    }
    let (offer, pending) = api.apply().expect("an offer");
    PendingPeer { rtc, socket, pending, mids, offer: offer.to_sdp_string() }
}

impl PendingPeer {
    pub fn accept(mut self, answer: &str) -> Peer {
        let answer = SdpAnswer::from_sdp_string(answer).expect("answer parses");
        self.rtc.sdp_api().accept_answer(self.pending, answer).expect("answer accepted");
        Peer {
            rtc: self.rtc,
            socket: self.socket,
            mids: self.mids,
            media_time: HashMap::new(),
            deadline: None,
            pacer: None,
        }
    }
}

pub struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    mids: Vec<(Mid, MediaKind)>,
    media_time: HashMap<Mid, u64>,
    deadline: Option<Instant>,
    pacer: Option<Pacer>,
}

impl Peer {
    /// Sends this peer's datagrams at most at `bps`, as a browser's or the native SDK's pacer
    /// does, instead of a whole frame in one burst (see `umbra_loadgen::pacer`).
    pub fn paced(mut self, bps: u64) -> Peer {
        self.pacer = Some(Pacer::new(bps, Instant::now()));
        self
    }
}

/// One frame as a subscriber received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub kind: MediaKind,
    pub data: Vec<u8>,
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct PeerState {
    pub connected: bool,
    pub disconnected: bool,
    pub received: Vec<Received>,
    /// Number of frames received (kept even when payloads are not).
    pub frames: [u64; 2],
    pub keyframe_requests: Vec<(MediaKind, KeyframeRequestKind, Instant)>,
    /// Publisher write → subscriber frame, in µs, for frames made by [`timed_frame`].
    pub e2e_us: Vec<u32>,
    /// Sequence numbers seen, per kind (audio, video), for exact loss accounting.
    pub seen: [Vec<bool>; 2],
    /// NACKs this peer sent, summed over its receive streams (from str0m's periodic ingress
    /// statistics), and how many such reports arrived.
    pub nacks_sent: u64,
    pub ingress_reports: u64,
    nacks_by_mid: Vec<(Mid, u64)>,
}

impl PeerState {
    /// How many of the frames with sequence numbers in `range` arrived.
    pub fn seen_in(&self, kind: MediaKind, range: std::ops::Range<u64>) -> u64 {
        let seen = &self.seen[(kind == MediaKind::Video) as usize];
        range.filter(|&i| seen.get(i as usize).copied().unwrap_or(false)).count() as u64
    }
}

pub type PeerId = usize;

enum Cmd {
    Add(Box<Peer>, mpsc::Sender<PeerId>),
    Write { peer: PeerId, kind: MediaKind, data: Vec<u8> },
    RequestKeyframe { peer: PeerId, kind: KeyframeRequestKind },
    Remove(PeerId),
    Shutdown,
}

/// The client side of a test: many peers, one thread.
pub struct Clients {
    tx: Sender<Cmd>,
    waker: UnixDatagram,
    pub state: Arc<Mutex<Vec<PeerState>>>,
    thread: Option<JoinHandle<()>>,
    keep_payloads: bool,
}

impl Clients {
    pub fn new(keep_payloads: bool) -> Clients {
        let (tx, rx) = mpsc::channel();
        let (waker, waker_rx) = UnixDatagram::pair().unwrap();
        waker.set_nonblocking(true).unwrap();
        waker_rx.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(Vec::new()));
        let st = state.clone();
        let thread = std::thread::Builder::new()
            .name("test-clients".into())
            .spawn(move || client_loop(rx, waker_rx, st, keep_payloads))
            .unwrap();
        Clients { tx, waker, state, thread: Some(thread), keep_payloads }
    }

    fn send(&self, cmd: Cmd) {
        self.tx.send(cmd).expect("client thread alive");
        let _ = self.waker.send(&[1]);
    }

    pub fn add(&self, peer: Peer) -> PeerId {
        let (tx, rx) = mpsc::channel();
        self.send(Cmd::Add(Box::new(peer), tx));
        rx.recv_timeout(Duration::from_secs(10)).expect("peer added")
    }

    pub fn write(&self, peer: PeerId, kind: MediaKind, data: Vec<u8>) {
        self.send(Cmd::Write { peer, kind, data });
    }

    pub fn request_keyframe(&self, peer: PeerId, kind: KeyframeRequestKind) {
        self.send(Cmd::RequestKeyframe { peer, kind });
    }

    pub fn remove(&self, peer: PeerId) {
        self.send(Cmd::Remove(peer));
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Vec<PeerState>) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Wait (bounded) until `cond` holds over the peers' state.
    pub fn wait_until(&self, what: &str, timeout: Duration, mut cond: impl FnMut(&[PeerState]) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if cond(&self.state.lock().unwrap()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        let _ = self.tx.send(Cmd::Shutdown);
        let _ = self.waker.send(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn drain(peer: &mut Peer, st: &mut PeerState, keep: bool) {
    for _ in 0..100_000 {
        match peer.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                peer.deadline = Some(t);
                if let Some(pacer) = &mut peer.pacer
                    && let Some(at) = pacer.release(&peer.socket, Instant::now())
                {
                    peer.deadline = Some(t.min(at));
                }
                return;
            }
            Ok(Output::Transmit(t)) => match &mut peer.pacer {
                Some(pacer) => pacer.push(t.contents.to_vec(), t.destination),
                None => {
                    let _ = peer.socket.send_to(&t.contents, t.destination);
                }
            },
            Ok(Output::Event(e)) => match e {
                Event::Connected => st.connected = true,
                Event::MediaData(d) => {
                    let kind = peer.mids.iter().find(|(m, _)| *m == d.mid).map(|(_, k)| *k).unwrap_or(MediaKind::Video);
                    let k = (kind == MediaKind::Video) as usize;
                    st.frames[k] += 1;
                    if d.data.len() >= 4 {
                        let seq = seq_of(&d.data) as usize;
                        // Bounded: a garbled sequence number must not allocate gigabytes.
                        if seq < 10_000_000 {
                            if st.seen[k].len() <= seq {
                                st.seen[k].resize(seq + 1, false);
                            }
                            st.seen[k][seq] = true;
                        }
                    }
                    if let Some(sent) = timed_frame_sent_at(&d.data) {
                        st.e2e_us.push(Instant::now().saturating_duration_since(sent).as_micros() as u32);
                    }
                    if keep {
                        st.received.push(Received { kind, data: d.data.to_vec(), at: Instant::now() });
                    }
                }
                Event::MediaIngressStats(i) => {
                    st.ingress_reports += 1;
                    match st.nacks_by_mid.iter_mut().find(|(m, _)| *m == i.mid) {
                        Some(e) => e.1 = i.nacks,
                        None => st.nacks_by_mid.push((i.mid, i.nacks)),
                    }
                    st.nacks_sent = st.nacks_by_mid.iter().map(|(_, n)| n).sum();
                }
                Event::KeyframeRequest(r) => {
                    let kind = peer.mids.iter().find(|(m, _)| *m == r.mid).map(|(_, k)| *k).unwrap_or(MediaKind::Video);
                    st.keyframe_requests.push((kind, r.kind, Instant::now()));
                }
                _ => {}
            },
            Err(_) => {
                st.disconnected = true;
                peer.deadline = None;
                return;
            }
        }
    }
}

fn client_loop(rx: Receiver<Cmd>, waker: UnixDatagram, state: Arc<Mutex<Vec<PeerState>>>, keep: bool) {
    let mut peers: Vec<Option<Peer>> = Vec::new();
    let mut buf = vec![0u8; 2048];
    loop {
        // Commands.
        loop {
            match rx.try_recv() {
                Ok(Cmd::Add(mut peer, reply)) => {
                    let id = peers.len();
                    let mut st = state.lock().unwrap();
                    st.push(PeerState::default());
                    drain(&mut peer, &mut st[id], keep);
                    peers.push(Some(*peer));
                    let _ = reply.send(id);
                }
                Ok(Cmd::Write { peer, kind, data }) => {
                    let Some(Some(p)) = peers.get_mut(peer) else {
                        continue;
                    };
                    let Some(&(mid, _)) = p.mids.iter().find(|(_, k)| *k == kind) else {
                        continue;
                    };
                    let step = if kind == MediaKind::Audio { 960 } else { 3000 };
                    let t = p.media_time.entry(mid).or_insert(0);
                    *t += step;
                    let media_time = if kind == MediaKind::Audio {
                        MediaTime::new(*t, str0m::media::Frequency::FORTY_EIGHT_KHZ)
                    } else {
                        MediaTime::from_90khz(*t)
                    };
                    if let Some(w) = p.rtc.writer(mid) {
                        let pt = w.payload_params().next().map(|pp| pp.pt());
                        if let Some(pt) = pt {
                            let _ = w.write(pt, Instant::now(), media_time, data);
                        }
                    }
                    let mut st = state.lock().unwrap();
                    drain(p, &mut st[peer], keep);
                }
                Ok(Cmd::RequestKeyframe { peer, kind }) => {
                    let Some(Some(p)) = peers.get_mut(peer) else {
                        continue;
                    };
                    let Some(&(mid, _)) = p.mids.iter().find(|(_, k)| *k == MediaKind::Video) else {
                        continue;
                    };
                    if let Some(mut w) = p.rtc.writer(mid) {
                        w.request_keyframe(None, kind).expect("keyframe request possible");
                    }
                    let mut st = state.lock().unwrap();
                    drain(p, &mut st[peer], keep);
                }
                Ok(Cmd::Remove(id)) => {
                    if let Some(slot) = peers.get_mut(id) {
                        *slot = None;
                    }
                }
                Ok(Cmd::Shutdown) | Err(mpsc::TryRecvError::Disconnected) => return,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        // Timers.
        let now = Instant::now();
        let mut next = now + Duration::from_millis(50);
        {
            let mut st = state.lock().unwrap();
            for (i, slot) in peers.iter_mut().enumerate() {
                let Some(p) = slot else { continue };
                if p.deadline.is_some_and(|d| d <= now) {
                    let _ = p.rtc.handle_input(Input::Timeout(now));
                    drain(p, &mut st[i], keep);
                }
                if let Some(d) = p.deadline {
                    next = next.min(d);
                }
            }
        }
        // Wait for any socket or the waker.
        let mut fds: Vec<libc::pollfd> = peers
            .iter()
            .map(|s| libc::pollfd {
                fd: s.as_ref().map(|p| p.socket.as_raw_fd()).unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        fds.push(libc::pollfd { fd: waker.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        let ms = next.saturating_duration_since(Instant::now()).as_micros().div_ceil(1000) as i32;
        // SAFETY: fds is a valid, owned array of pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if fds.last().unwrap().revents != 0 {
            while waker.recv(&mut buf).is_ok() {}
        }
        let mut st = state.lock().unwrap();
        for (i, f) in fds[..peers.len()].iter().enumerate() {
            if f.revents == 0 {
                continue;
            }
            let Some(p) = peers[i].as_mut() else { continue };
            let local = p.socket.local_addr().unwrap();
            for _ in 0..256 {
                match p.socket.recv_from(&mut buf) {
                    Ok((n, source)) => {
                        let Ok(contents) = buf[..n].try_into() else {
                            continue;
                        };
                        let input = Input::Receive(
                            Instant::now(),
                            Receive { proto: Protocol::Udp, source, destination: local, contents },
                        );
                        let _ = p.rtc.handle_input(input);
                        drain(p, &mut st[i], keep);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
    }
}

/// A test frame: a 4-byte sequence number, the kind, then a deterministic filler, so a receiver
/// can check order and byte equality.
pub fn frame(seq: u32, kind: MediaKind, len: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(&seq.to_be_bytes());
    v.push(if kind == MediaKind::Audio { b'A' } else { b'V' });
    let mut x = seq.wrapping_mul(2_654_435_761).wrapping_add(len as u32) | 1;
    while v.len() < len {
        // xorshift: varied bytes, never a long run of zeros (which could look like an H.264
        // start code to a packetizer).
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        v.push((x as u8) | 0x01);
    }
    v
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A frame that carries its send time (bytes 5..13, ns since a process-wide epoch), marked
/// with `T` at byte 4, so subscribers in the same process can measure end-to-end latency.
pub fn timed_frame(seq: u32, len: usize) -> Vec<u8> {
    let mut v = frame(seq, MediaKind::Video, len.max(13));
    v[4] = b'T';
    let ns = epoch().elapsed().as_nanos() as u64;
    v[5..13].copy_from_slice(&ns.to_be_bytes());
    v
}

fn timed_frame_sent_at(data: &[u8]) -> Option<Instant> {
    if data.len() < 13 || data[4] != b'T' {
        return None;
    }
    let ns = u64::from_be_bytes(data[5..13].try_into().ok()?);
    Some(epoch() + Duration::from_nanos(ns))
}

pub fn seq_of(data: &[u8]) -> u32 {
    u32::from_be_bytes([data[0], data[1], data[2], data[3]])
}

pub fn loopback_v4() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

pub fn loopback_v6() -> IpAddr {
    "::1".parse().unwrap()
}

// ------------------------------------------------------------------ router-side helpers

/// Tests that stream media take turns within a test binary: on a loaded 2-core CI machine,
/// several routers and client threads at once would turn CPU starvation into "loss".
pub fn media_test_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

use umbra_router::{PublishSpec, Router, RouterConfig, RouterEvent, RouterHandle, SubscribeSpec};

pub fn start_router_with(mut config: RouterConfig) -> (RouterHandle, Receiver<RouterEvent>) {
    let (tx, rx) = mpsc::channel();
    config.on_event = Some(Box::new(move |e| {
        let _ = tx.send(e);
    }));
    (Router::start(config).expect("router starts"), rx)
}

pub fn start_router(bind: Vec<std::net::SocketAddr>) -> (RouterHandle, Receiver<RouterEvent>) {
    start_router_with(RouterConfig::new(bind))
}

pub fn publish(router: &RouterHandle, clients: &Clients, opts: &PeerOptions, stream: &str, conn: &str) -> PeerId {
    publish_answered(router, clients, opts, stream, conn).0
}

/// [`publish`], also returning the router's answer.
pub fn publish_answered(
    router: &RouterHandle,
    clients: &Clients,
    opts: &PeerOptions,
    stream: &str,
    conn: &str,
) -> (PeerId, String) {
    let p = offer(opts);
    let answer = router
        .publish(PublishSpec {
            session_id: "s1".into(),
            connection_id: conn.into(),
            stream_id: stream.into(),
            sdp_offer: p.offer.clone(),
            video_size: None,
        })
        .expect("publish answered");
    (clients.add(p.accept(&answer)), answer)
}

pub fn subscribe(
    router: &RouterHandle,
    clients: &Clients,
    opts: &PeerOptions,
    stream: &str,
    sub: &str,
    conn: &str,
) -> PeerId {
    subscribe_answered(router, clients, opts, stream, sub, conn).0
}

/// [`subscribe`], also returning the router's answer.
pub fn subscribe_answered(
    router: &RouterHandle,
    clients: &Clients,
    opts: &PeerOptions,
    stream: &str,
    sub: &str,
    conn: &str,
) -> (PeerId, String) {
    let p = offer(opts);
    let answer = router
        .subscribe(SubscribeSpec {
            session_id: "s1".into(),
            connection_id: conn.into(),
            subscription_id: sub.into(),
            stream_id: stream.into(),
            sdp_offer: p.offer.clone(),
            wish: Default::default(),
        })
        .expect("subscribe answered");
    (clients.add(p.accept(&answer)), answer)
}

/// Send `secs` seconds of 30 fps video and 50 fps audio, paced in real time.
pub fn send_media(clients: &Clients, publisher: PeerId, secs: f64, video_len: usize) -> (u32, u32) {
    let start = Instant::now();
    let (mut v, mut a) = (0u32, 0u32);
    while start.elapsed().as_secs_f64() < secs {
        let t = start.elapsed().as_secs_f64();
        while (v as f64) < t * 30.0 {
            clients.write(publisher, MediaKind::Video, frame(v, MediaKind::Video, video_len));
            v += 1;
        }
        while (a as f64) < t * 50.0 {
            clients.write(publisher, MediaKind::Audio, frame(a, MediaKind::Audio, 120));
            a += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    (v, a)
}

/// One publisher (stream "cam") and `n` subscribers to it, all connected.
pub fn publisher_and_subscribers(
    router: &RouterHandle,
    clients: &Clients,
    n: usize,
    connect_within: Duration,
) -> (PeerId, Vec<PeerId>) {
    let ip = loopback_v4();
    let publisher = publish(router, clients, &PeerOptions::publisher(ip), "cam", "c-pub");
    let subs = (0..n)
        .map(|i| subscribe(router, clients, &PeerOptions::subscriber(ip), "cam", &format!("sub{i}"), &format!("c{i}")))
        .collect();
    clients.wait_until("all peers connected", connect_within, |s| s.iter().all(|p| p.connected));
    (publisher, subs)
}

/// Every subscriber in `subs` got at least 95 % of the `video` and `audio` frames sent, intact
/// and in order (`check_frames`).
pub fn assert_subscribers_got(clients: &Clients, subs: &[PeerId], video: u32, audio: u32, video_len: usize) {
    clients.with(|st| {
        for &s in subs {
            let gv = check_frames(&st[s], MediaKind::Video, video_len);
            let ga = check_frames(&st[s], MediaKind::Audio, video_len);
            assert!(gv as f64 >= 0.95 * video as f64, "subscriber {s}: {gv} of {video} video frames");
            assert!(ga as f64 >= 0.95 * audio as f64, "subscriber {s}: {ga} of {audio} audio frames");
        }
    });
}

/// Frames of one kind a subscriber got: all byte-equal to what was sent and in order;
/// returns how many.
pub fn check_frames(st: &PeerState, kind: MediaKind, video_len: usize) -> usize {
    let got: Vec<&Received> = st.received.iter().filter(|r| r.kind == kind).collect();
    let mut last = None;
    for r in &got {
        let seq = seq_of(&r.data);
        let len = if kind == MediaKind::Video { video_len } else { 120 };
        assert_eq!(r.data, frame(seq, kind, len), "{kind:?} frame {seq} differs from what was sent");
        if let Some(l) = last {
            assert!(seq > l, "{kind:?} frame {seq} after {l}: out of order");
        }
        last = Some(seq);
    }
    got.len()
}
