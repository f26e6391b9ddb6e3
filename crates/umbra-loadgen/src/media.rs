//! The media threads: one publisher sending synthetic VP8 and Opus-shaped frames on a fixed
//! schedule, and a few subscriber threads, each a single epoll loop over many peer
//! connections, that record which frames arrived and how late.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::Event;
use str0m::format::Codec;
use str0m::media::{MediaTime, Mid, Pt};

use crate::frames::{self, KIND_AUDIO, KIND_VIDEO, SeqSet};
use crate::peer::{Peer, is_padded, is_rtp, poll_readable, pollfd};

/// What the publisher sends.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    pub video_bps: u64,
    pub fps: u32,
    /// Audio frame size in bytes (every 20 ms).
    pub audio_bytes: usize,
    /// Frames between periodic key frames.
    pub keyframe_interval: u32,
    /// Skip (count but never send) every `drop_every`-th frame of each kind; 0 = none. For
    /// checking that loss is detected.
    pub drop_every: u32,
    /// Send at most this multiple of `video_bps` (libwebrtc's pacer: 2.5), a key frame then
    /// leaving over tens of milliseconds; 0: each frame in one burst.
    pub pace: f64,
}

/// What the publisher thread shares with the controller.
#[derive(Default)]
pub struct PublisherShared {
    /// Frames counted as sent so far (the next sequence number), per kind.
    pub video_seq: AtomicU32,
    pub audio_seq: AtomicU32,
    pub connected: AtomicBool,
    pub keyframe_requests: AtomicU64,
    pub stop: AtomicBool,
    pub dead: AtomicBool,
}

fn pt_for(peer: &mut Peer, mid: Option<Mid>, codec: Codec) -> Option<(Mid, Pt)> {
    let mid = mid?;
    let w = peer.rtc.writer(mid)?;
    let pt = w.payload_params().find(|p| p.spec().codec == codec).map(|p| p.pt())?;
    Some((mid, pt))
}

pub fn spawn_publisher(mut peer: Peer, cfg: PublisherConfig, shared: Arc<PublisherShared>) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name("loadgen-pub".into())
        .spawn(move || {
            let mean_frame = cfg.video_bps as f64 / 8.0 / f64::from(cfg.fps);
            let ki = cfg.keyframe_interval.max(1);
            // Key frames at 4x the mean; delta frames +-20 % around the size that keeps the
            // average at the target rate.
            let delta_mean = mean_frame * (f64::from(ki) - 4.0).max(1.0) / f64::from(ki - 1).max(1.0);
            let mut rng: u32 = 0x9e37_79b9;
            let mut started: Option<Instant> = None;
            let mut tracks: Option<((Mid, Pt), (Mid, Pt))> = None;
            let (mut v, mut a) = (0u32, 0u32);
            let mut want_key = false;
            let mut last_key = Instant::now();
            let mut fds = [pollfd(peer.fd())];
            if cfg.pace > 0.0 {
                peer.pace((cfg.video_bps as f64 * cfg.pace) as u64);
            }
            let mut paced_until: Option<Instant> = None;
            while !shared.stop.load(Ordering::Relaxed) {
                let now = Instant::now();
                let mut next = peer.deadline.min(now + Duration::from_millis(20));
                if let Some(t) = paced_until {
                    next = next.min(t);
                }
                if let Some(t0) = started {
                    next = next.min(t0 + Duration::from_secs_f64(f64::from(v) / f64::from(cfg.fps)));
                    next = next.min(t0 + Duration::from_millis(20 * u64::from(a)));
                }
                let wait = next.saturating_duration_since(now);
                poll_readable(&mut fds, wait.as_micros().div_ceil(1000) as i32);
                let readable = fds[0].revents != 0;
                let mut events = Vec::new();
                peer.drive(
                    readable,
                    &mut |d| crate::debug!("publisher got {} bytes, first byte {}", d.len(), d[0]),
                    &mut |_, e| events.push(e),
                );
                if !peer.alive {
                    shared.dead.store(true, Ordering::Relaxed);
                    break;
                }
                paced_until = peer.release();
                for e in events {
                    match e {
                        Event::Connected => {
                            shared.connected.store(true, Ordering::Relaxed);
                        }
                        Event::IceConnectionStateChange(st) => {
                            crate::debug!("publisher ICE: {st:?}");
                        }
                        Event::KeyframeRequest(_) => {
                            shared.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                            want_key = true;
                        }
                        _ => {}
                    }
                }
                if tracks.is_none() && shared.connected.load(Ordering::Relaxed) {
                    let (vm, am) = (peer.video_mid, peer.audio_mid);
                    if let (Some(vt), Some(at)) =
                        (pt_for(&mut peer, vm, Codec::Vp8), pt_for(&mut peer, am, Codec::Opus))
                    {
                        tracks = Some((vt, at));
                        started = Some(Instant::now());
                    }
                }
                let (Some(t0), Some(((vmid, vpt), (amid, apt)))) = (started, tracks) else { continue };
                let now = Instant::now();
                let t = now.duration_since(t0).as_secs_f64();
                let mut wrote = false;
                // Bounded catch-up: a starved thread sends what is due, at most a second's worth.
                let mut budget = cfg.fps + 50;
                while f64::from(v) <= t * f64::from(cfg.fps) && budget > 0 {
                    budget -= 1;
                    // Periodic key frames, and on request (at most one per 300 ms).
                    let key = v % ki == 0 || (want_key && now.duration_since(last_key) > Duration::from_millis(300));
                    if key {
                        want_key = false;
                        last_key = now;
                    }
                    rng ^= rng << 13;
                    rng ^= rng >> 17;
                    rng ^= rng << 5;
                    let jitter = 0.8 + 0.4 * f64::from(rng % 1000) / 1000.0;
                    let len = if key { (mean_frame * 4.0) as usize } else { (delta_mean * jitter) as usize };
                    let skip = cfg.drop_every > 0 && v % cfg.drop_every == cfg.drop_every - 1;
                    if !skip {
                        let data = frames::video_frame(v, key, len, frames::now_us(), 1280, 720);
                        let mt = MediaTime::from_90khz(u64::from(v) * 90_000 / u64::from(cfg.fps));
                        if let Some(w) = peer.rtc.writer(vmid) {
                            let _ = w.write(vpt, now, mt, data);
                        }
                        wrote = true;
                    }
                    v += 1;
                    shared.video_seq.store(v, Ordering::Relaxed);
                }
                while f64::from(a) * 0.020 <= t && budget > 0 {
                    budget -= 1;
                    let skip = cfg.drop_every > 0 && a % cfg.drop_every == cfg.drop_every - 1;
                    if !skip {
                        let data = frames::audio_frame(a, cfg.audio_bytes, frames::now_us());
                        let mt = MediaTime::new(u64::from(a) * 960, str0m::media::Frequency::FORTY_EIGHT_KHZ);
                        if let Some(w) = peer.rtc.writer(amid) {
                            let _ = w.write(apt, now, mt, data);
                        }
                        wrote = true;
                    }
                    a += 1;
                    shared.audio_seq.store(a, Ordering::Relaxed);
                }
                if wrote {
                    // Packetize and send now rather than at the next wake-up.
                    let _ = peer.rtc.handle_input(str0m::Input::Timeout(Instant::now()));
                    peer.flush(&mut |_, _| {});
                    paced_until = peer.release();
                }
            }
            peer.close();
        })
        .expect("spawn the publisher thread")
}

/// Counters all subscriber threads add to.
#[derive(Default)]
pub struct SubscriberShared {
    /// RTP datagrams received by all subscribers (the server's forwarded packets).
    pub rtp_packets: AtomicU64,
    pub rtp_bytes: AtomicU64,
    /// RTP datagrams with the padding bit (bandwidth probes), not in `rtp_packets`.
    pub padding_packets: AtomicU64,
    /// Subscribers whose connection is up (ICE + DTLS).
    pub connected: AtomicUsize,
    /// Subscribers that received at least one video frame.
    pub receiving: AtomicUsize,
    /// Subscribers whose connection died.
    pub dead: AtomicUsize,
    /// Record latencies of frames arriving now.
    pub recording: AtomicBool,
    pub stop: AtomicBool,
}

/// What one subscriber thread reports at the end.
#[derive(Default)]
pub struct Collected {
    /// Per subscriber: frames received of the video range, of the audio range.
    pub received: Vec<(u64, u64)>,
    /// Frame latencies (µs) recorded while `recording` was set.
    pub video_latency_us: Vec<u32>,
    pub audio_latency_us: Vec<u32>,
}

pub enum SubCommand {
    Add(Box<Peer>),
    Collect { video: Range<u32>, audio: Range<u32>, reply: Sender<Collected> },
}

struct Sub {
    peer: Box<Peer>,
    video: SeqSet,
    audio: SeqSet,
    receiving: bool,
}

/// Per-thread sums, flushed into [`SubscriberShared`] once per loop.
#[derive(Default)]
struct Tally {
    packets: u64,
    bytes: u64,
    padded: u64,
    video_latency_us: Vec<u32>,
    audio_latency_us: Vec<u32>,
}

/// Feeds one subscriber what arrived on its socket (when `readable`) and its due timeout, and
/// records the frames that came out.
fn service(s: &mut Sub, readable: bool, recording: bool, shared: &SubscriberShared, t: &mut Tally) {
    let was_alive = s.peer.alive;
    let Sub { peer, video, audio, receiving } = s;
    let Tally { packets, bytes, padded, video_latency_us, audio_latency_us } = t;
    peer.drive(
        readable,
        &mut |d| {
            if is_rtp(d) && is_padded(d) {
                *padded += 1;
            } else if is_rtp(d) {
                *packets += 1;
                *bytes += d.len() as u64;
            }
        },
        &mut |_, e| match e {
            Event::Connected => {
                shared.connected.fetch_add(1, Ordering::Relaxed);
            }
            Event::MediaData(m) => {
                let Some((kind, seq, sent)) = frames::parse_stamp(&m.data) else { return };
                let lat = frames::now_us().saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
                if kind == KIND_VIDEO {
                    video.insert(seq);
                    if !*receiving {
                        *receiving = true;
                        shared.receiving.fetch_add(1, Ordering::Relaxed);
                    }
                    if recording {
                        video_latency_us.push(lat);
                    }
                } else if kind == KIND_AUDIO {
                    audio.insert(seq);
                    if recording {
                        audio_latency_us.push(lat);
                    }
                }
            }
            _ => {}
        },
    );
    if was_alive && !s.peer.alive {
        shared.dead.fetch_add(1, Ordering::Relaxed);
    }
}

/// One subscriber thread: an epoll(7) loop over its peers' sockets, so that a wake-up costs
/// what is ready rather than every socket (a server whose pacer spreads packets evenly wakes the
/// client per packet; a poll(2) over every socket each time would make the client, which
/// shares the machine with the server, pay more for a paced server than for a bursty one).
/// Timeouts are served by a sweep over all peers when the earliest deadline is due, at most
/// once a millisecond.
///
/// `batch`: a thread wakes at most once per `batch` (0: whenever a datagram arrives). A server
/// whose pacer spreads packets evenly would otherwise wake the client once per packet, and the
/// client, which shares the machine with the server, would spend more CPU on a paced server's
/// stream than on a bursty one's; a fixed cadence makes the client's cost the same for both
/// and adds at most `batch` to the measured latency, equally.
pub fn spawn_subscriber_thread(
    index: usize,
    shared: Arc<SubscriberShared>,
    commands: Receiver<SubCommand>,
    batch: Duration,
) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(format!("loadgen-sub{index}"))
        .spawn(move || {
            // SAFETY: plain syscall; the descriptor is closed at the end of the thread.
            let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            assert!(ep >= 0, "epoll_create1 failed");
            let mut subs: Vec<Sub> = Vec::new();
            let mut ready = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
            let mut tally = Tally::default();
            let mut next_sweep = Instant::now();
            let mut last_wake = Instant::now();
            while !shared.stop.load(Ordering::Relaxed) {
                let since = last_wake.elapsed();
                if since < batch {
                    std::thread::sleep(batch - since);
                }
                last_wake = Instant::now();
                loop {
                    match commands.try_recv() {
                        Ok(SubCommand::Add(peer)) => {
                            let mut ev = libc::epoll_event { events: libc::EPOLLIN as u32, u64: subs.len() as u64 };
                            // SAFETY: a valid epoll descriptor, an open socket, a live event struct.
                            unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, peer.fd(), &mut ev) };
                            subs.push(Sub {
                                peer,
                                video: SeqSet::default(),
                                audio: SeqSet::default(),
                                receiving: false,
                            });
                            next_sweep = Instant::now();
                        }
                        Ok(SubCommand::Collect { video, audio, reply }) => {
                            let received = subs
                                .iter()
                                .map(|s| (s.video.count(video.clone()), s.audio.count(audio.clone())))
                                .collect();
                            let _ = reply.send(Collected {
                                received,
                                video_latency_us: std::mem::take(&mut tally.video_latency_us),
                                audio_latency_us: std::mem::take(&mut tally.audio_latency_us),
                            });
                        }
                        Err(_) => break,
                    }
                }
                let now = Instant::now();
                let wait = next_sweep.saturating_duration_since(now).min(Duration::from_millis(5));
                // SAFETY: `ready` is a live buffer of 256 events.
                let n = unsafe {
                    libc::epoll_wait(ep, ready.as_mut_ptr(), ready.len() as i32, wait.as_micros().div_ceil(1000) as i32)
                };
                let recording = shared.recording.load(Ordering::Relaxed);
                for ev in ready.iter().take(n.max(0) as usize) {
                    let i = ev.u64 as usize;
                    if let Some(s) = subs.get_mut(i) {
                        service(s, true, recording, &shared, &mut tally);
                        if s.peer.alive {
                            next_sweep = next_sweep.min(s.peer.deadline);
                        }
                    }
                }
                let now = Instant::now();
                if now >= next_sweep {
                    let mut earliest = now + Duration::from_millis(5);
                    for s in &mut subs {
                        if s.peer.alive && now >= s.peer.deadline {
                            service(s, false, recording, &shared, &mut tally);
                        }
                        if s.peer.alive {
                            earliest = earliest.min(s.peer.deadline);
                        }
                    }
                    next_sweep = earliest.max(now + Duration::from_millis(1));
                }
                shared.rtp_packets.fetch_add(std::mem::take(&mut tally.packets), Ordering::Relaxed);
                shared.rtp_bytes.fetch_add(std::mem::take(&mut tally.bytes), Ordering::Relaxed);
                shared.padding_packets.fetch_add(std::mem::take(&mut tally.padded), Ordering::Relaxed);
            }
            for s in &mut subs {
                s.peer.close();
            }
            // SAFETY: our own descriptor, closed once.
            unsafe { libc::close(ep) };
        })
        .expect("spawn a subscriber thread")
}

/// The subscriber threads and their command channels; peers are dealt round-robin.
pub struct SubscriberPool {
    pub shared: Arc<SubscriberShared>,
    senders: Vec<Sender<SubCommand>>,
    threads: Vec<JoinHandle<()>>,
    next: usize,
}

impl SubscriberPool {
    pub fn new(threads: usize, batch: Duration) -> Self {
        let shared = Arc::new(SubscriberShared::default());
        let mut senders = Vec::new();
        let mut handles = Vec::new();
        for i in 0..threads.max(1) {
            let (tx, rx) = channel();
            senders.push(tx);
            handles.push(spawn_subscriber_thread(i, shared.clone(), rx, batch));
        }
        Self { shared, senders, threads: handles, next: 0 }
    }

    pub fn add(&mut self, peer: Peer) {
        let i = self.next % self.senders.len();
        self.next += 1;
        let _ = self.senders[i].send(SubCommand::Add(Box::new(peer)));
    }

    /// Gathers every thread's counts for the sequence ranges and the latencies recorded so far.
    pub fn collect(&self, video: Range<u32>, audio: Range<u32>) -> Collected {
        let mut all = Collected::default();
        for tx in &self.senders {
            let (rtx, rrx) = channel();
            if tx.send(SubCommand::Collect { video: video.clone(), audio: audio.clone(), reply: rtx }).is_err() {
                continue;
            }
            if let Ok(c) = rrx.recv_timeout(Duration::from_secs(10)) {
                all.received.extend(c.received);
                all.video_latency_us.extend(c.video_latency_us);
                all.audio_latency_us.extend(c.audio_latency_us);
            }
        }
        all
    }

    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
