//! Simulcast through the router over real loopback UDP with real DTLS-SRTP: a str0m publisher
//! in RTP mode sends three rid layers of VP8-shaped RTP (RFC 7741 descriptors with picture
//! ids, TL0PICIDX and an L1T3 temporal pattern; key frames with a real VP8 key frame header,
//! sent at start and on a PLI for that rid), and RTP-mode subscribers check what reaches them
//! packet by packet: where video starts, sequence numbers and timestamps across a layer switch,
//! temporal thinning, pausing; plus the router's events (LayerChanged, LayersWanted,
//! ActiveSpeaker). A VP9 or AV1 publisher sends one stream of three spatial layers (SVC: RFC
//! 9628 descriptors with the scalability structure on key pictures, or AV1 Dependency
//! Descriptors with the template structure on key pictures), forwarded as the layers up to each
//! subscriber's.

mod common;

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use common::{loopback_v4, media_test_lock, start_router};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc};
use umbra_router::dependency_descriptor as dd;
use umbra_router::{PublishSpec, RouterEvent, RouterEventKind, RouterHandle, SubscribeSpec, Target, VideoWish};

const RIDS: [&str; 3] = ["q", "h", "f"];
/// The L1T3 pattern: TID of frame n is TIDS[n % 4].
const TIDS: [u8; 4] = [0, 2, 1, 2];

/// One video packet as a subscriber received it.
#[derive(Debug, Clone)]
struct Rx {
    seq: u64,
    ts: u32,
    layer: u8,
    tid: u8,
    /// Starts a key frame.
    key: bool,
    picture_id: u16,
    tl0: u8,
    at: Instant,
}

/// One VP9 packet as a subscriber received it (the test encoder's tag ends the payload).
#[derive(Debug, Clone)]
struct SvcRx {
    seq: u64,
    sid: u8,
    tid: u8,
    /// The first packet of a key picture.
    key: bool,
    marker: bool,
    picture: u32,
    /// The Dependency Descriptor came along (AV1).
    dd: bool,
}

struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    mids: Vec<(Mid, MediaKind)>,
    connected: bool,
    video: Vec<Rx>,
    svc: Vec<SvcRx>,
    /// rids the router asked a key frame for.
    keyframe_requests: Vec<Option<Rid>>,
}

fn offer(
    simulcast: bool,
    audio: bool,
    video: bool,
    dir: Direction,
) -> (Rtc, UdpSocket, SdpPendingOffer, String, Vec<(Mid, MediaKind)>) {
    let socket = UdpSocket::bind(SocketAddr::new(loopback_v4(), 0)).unwrap();
    socket.set_nonblocking(true).unwrap();
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .clear_codecs()
        .enable_opus(true, false)
        .enable_vp8(true)
        .enable_vp9(true)
        .enable_av1(true)
        .set_extension(12, Extension::with_serializer(dd::URI, dd::Serializer))
        .build(Instant::now());
    rtc.add_local_candidate(Candidate::host(socket.local_addr().unwrap(), "udp").unwrap());
    let mut api = rtc.sdp_api();
    let mut mids = Vec::new();
    if audio {
        mids.push((api.add_media(MediaKind::Audio, dir, Some("s".into()), None, None), MediaKind::Audio));
    }
    if video {
        let sim = simulcast.then(|| {
            let mut s = Simulcast::new();
            for r in RIDS {
                s.add_send_layer(SimulcastLayer::new(r));
            }
            s
        });
        mids.push((api.add_media(MediaKind::Video, dir, Some("s".into()), None, sim), MediaKind::Video));
    }
    let (offer, pending) = api.apply().unwrap();
    (rtc, socket, pending, offer.to_sdp_string(), mids)
}

fn accept(rtc: Rtc, socket: UdpSocket, pending: SdpPendingOffer, answer: &str, mids: Vec<(Mid, MediaKind)>) -> Peer {
    let mut rtc = rtc;
    rtc.sdp_api().accept_answer(pending, SdpAnswer::from_sdp_string(answer).unwrap()).unwrap();
    Peer { rtc, socket, mids, connected: false, video: Vec::new(), svc: Vec::new(), keyframe_requests: Vec::new() }
}

impl Peer {
    fn mid(&self, kind: MediaKind) -> Mid {
        self.mids.iter().find(|(_, k)| *k == kind).unwrap().0
    }

    fn pt(&self, codec: Codec) -> str0m::media::Pt {
        self.rtc.codec_config().params().iter().find(|p| p.spec().codec == codec).unwrap().pt()
    }

    /// Answer str0m's timeouts, read the socket, record events.
    fn pump(&mut self) {
        let _ = self.rtc.handle_input(Input::Timeout(Instant::now()));
        let local = self.socket.local_addr().unwrap();
        let mut buf = vec![0u8; 2048];
        for _ in 0..1000 {
            match self.socket.recv_from(&mut buf) {
                Ok((n, source)) => {
                    if let Ok(contents) = buf[..n].try_into() {
                        let r = Receive { proto: Protocol::Udp, source, destination: local, contents };
                        let _ = self.rtc.handle_input(Input::Receive(Instant::now(), r));
                        self.drain();
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => continue,
            }
        }
        self.drain();
    }

    fn drain(&mut self) {
        for _ in 0..10_000 {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(_)) | Err(_) => return,
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => self.connected = true,
                    Event::KeyframeRequest(r) => self.keyframe_requests.push(r.rid),
                    Event::RtpPacket(p)
                        if [Codec::Vp9, Codec::Av1].iter().any(|&c| p.header.payload_type == self.pt(c)) =>
                    {
                        let d = &p.payload;
                        if let [.., sid, tid, key, p3, p2, p1, p0] = d[..] {
                            self.svc.push(SvcRx {
                                seq: *p.seq_no,
                                sid,
                                tid,
                                key: key == 1,
                                marker: p.header.marker,
                                picture: u32::from_be_bytes([p3, p2, p1, p0]),
                                dd: p.header.ext_vals.user_values.get::<dd::Raw>().is_some(),
                            });
                        }
                    }
                    Event::RtpPacket(p) => {
                        let d = &p.payload;
                        // Our descriptor: 6 bytes (X, I with a 15-bit id, L, T); the layer and
                        // the frame tag follow.
                        if d.len() > 17 && self.mids.iter().any(|(_, k)| *k == MediaKind::Video) {
                            self.video.push(Rx {
                                seq: *p.seq_no,
                                ts: p.header.timestamp,
                                layer: d[16],
                                tid: d[5] >> 6,
                                key: d[0] & 0x10 != 0 && d[6] & 0x01 == 0,
                                picture_id: u16::from_be_bytes([d[2] & 0x7F, d[3]]),
                                tl0: d[4],
                                at: Instant::now(),
                            });
                        }
                    }
                    _ => {}
                },
            }
        }
    }
}

/// The simulcast publisher's encoder state, per layer.
struct Encoder {
    frame: [u32; 3],
    seq: [u64; 3],
    ts: [u32; 3],
    picture_id: [u16; 3],
    tl0: [u8; 3],
    /// Frames since the last key frame, per layer (`None`: next is a key frame).
    since_key: [Option<u32>; 3],
    keys_sent: [u32; 3],
}

impl Encoder {
    fn new() -> Encoder {
        Encoder {
            frame: [0; 3],
            seq: [1000, 20_000, 40_000],
            ts: [0x1000_0000, 0x5000_0000, 0x9000_0000],
            picture_id: [100, 2000, 30_000],
            tl0: [10, 50, 200],
            since_key: [None; 3],
            keys_sent: [0; 3],
        }
    }

    /// One frame of each layer: layer l is 1 + l packets of 300 bytes.
    fn send_frame(&mut self, p: &mut Peer) {
        for rid in p.keyframe_requests.drain(..) {
            if let Some(l) = RIDS.iter().position(|r| rid.as_ref().is_some_and(|x| **x == **r)) {
                self.since_key[l] = None;
            }
        }
        let mid = p.mid(MediaKind::Video);
        let pt = p.pt(Codec::Vp8);
        let now = Instant::now();
        #[allow(clippy::needless_range_loop)] // one index over several per-layer arrays
        for l in 0..3 {
            let key = self.since_key[l].is_none();
            let n = self.since_key[l].map_or(0, |n| n + 1);
            self.since_key[l] = Some(n);
            let tid = TIDS[n as usize % 4];
            if tid == 0 {
                self.tl0[l] = self.tl0[l].wrapping_add(1);
            }
            if key {
                self.keys_sent[l] += 1;
            }
            self.picture_id[l] = (self.picture_id[l] + 1) & 0x7FFF;
            let (w, h) = (320u16 << l, 180u16 << l);
            let packets = 1 + l;
            for k in 0..packets {
                let first = k == 0;
                let pid = self.picture_id[l];
                let mut d = vec![
                    if first { 0x90 } else { 0x80 },
                    0xE0,
                    0x80 | (pid >> 8) as u8,
                    pid as u8,
                    self.tl0[l],
                    (tid << 6) | 0x20,
                ];
                if first {
                    d.extend_from_slice(&[if key { 0x10 } else { 0x11 }, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
                    d.extend_from_slice(&w.to_le_bytes());
                    d.extend_from_slice(&h.to_le_bytes());
                } else {
                    d.extend_from_slice(&[0x5A; 10]);
                }
                d.push(l as u8);
                d.extend_from_slice(&self.frame[l].to_be_bytes());
                d.resize(300, 0x3C);
                let seq = self.seq[l];
                self.seq[l] += 1;
                let write = RtpWrite::new(pt, seq.into(), self.ts[l], now, d).marker(k + 1 == packets);
                let mut api = p.rtc.direct_api();
                let tx = api.stream_tx_by_mid(mid, Some(Rid::from(RIDS[l]))).expect("a send stream per rid");
                tx.write_rtp(write);
            }
            self.frame[l] += 1;
            self.ts[l] = self.ts[l].wrapping_add(3000);
        }
        p.drain();
    }
}

/// An SVC encoder in the shape of Chromium's L3T3_KEY: each picture is three layer frames
/// (spatial layer `s` in `1 + s` packets of 300 bytes, sized 320x180 << s), the L1T3 temporal
/// pattern, key pictures at start and on a PLI. VP9: non-flexible descriptors (TL0PICIDX), the
/// scalability structure with the three sizes on a key picture's first packet. AV1: an
/// aggregation header (N on a key picture's first packet) and a Dependency Descriptor on every
/// packet, the template structure (9 templates S0T0..S2T2, render sizes) on a key picture's
/// first. The payload ends with a tag: spatial layer, TID, key picture start, picture number.
struct SvcEncoder {
    codec: Codec,
    picture: u32,
    seq: u64,
    ts: u32,
    picture_id: u16,
    tl0: u8,
    since_key: Option<u32>,
    keys_sent: u32,
}

impl SvcEncoder {
    fn new(codec: Codec) -> SvcEncoder {
        SvcEncoder {
            codec,
            picture: 0,
            seq: 5000,
            ts: 0x2000_0000,
            picture_id: 700,
            tl0: 3,
            since_key: None,
            keys_sent: 0,
        }
    }

    fn send_picture(&mut self, p: &mut Peer) {
        if !p.keyframe_requests.is_empty() {
            p.keyframe_requests.clear();
            self.since_key = None;
        }
        let key = self.since_key.is_none();
        let n = self.since_key.map_or(0, |n| n + 1);
        self.since_key = Some(n);
        let tid = TIDS[n as usize % 4];
        if tid == 0 {
            self.tl0 = self.tl0.wrapping_add(1);
        }
        self.keys_sent += u32::from(key);
        self.picture_id = (self.picture_id + 1) & 0x7FFF;
        let (mid, pt, now) = (p.mid(MediaKind::Video), p.pt(self.codec), Instant::now());
        for sid in 0..3u8 {
            let packets = 1 + sid;
            for k in 0..packets {
                let (first, last) = (k == 0, k + 1 == packets);
                let ss = key && sid == 0 && first;
                let flag = |on: bool, bit: u8| if on { bit } else { 0 };
                let mut ext = ExtensionValues::default();
                let mut d = if self.codec == Codec::Av1 {
                    ext.user_values.set(dd::Raw(av1_descriptor(first, last, sid, tid, self.picture, ss)));
                    vec![flag(!first, 0x80) | flag(!last, 0x40) | flag(ss, 0x08)]
                } else {
                    vec![
                        0xA0 | flag(!key, 0x40) | flag(first, 0x08) | flag(last, 0x04) | flag(ss, 0x02),
                        0x80 | (self.picture_id >> 8) as u8,
                        self.picture_id as u8,
                        (tid << 5) | flag(tid > 0, 0x10) | (sid << 1) | u8::from(key && sid > 0),
                        self.tl0,
                    ]
                };
                if ss && self.codec == Codec::Vp9 {
                    d.push((2 << 5) | 0x10);
                    for s in 0..3 {
                        d.extend_from_slice(&(320u16 << s).to_be_bytes());
                        d.extend_from_slice(&(180u16 << s).to_be_bytes());
                    }
                }
                d.resize(293, 0x3C);
                d.extend_from_slice(&[sid, tid, u8::from(ss)]);
                d.extend_from_slice(&self.picture.to_be_bytes());
                let write = RtpWrite::new(pt, self.seq.into(), self.ts, now, d).marker(sid == 2 && last).ext_vals(ext);
                self.seq += 1;
                let mut api = p.rtc.direct_api();
                api.stream_tx_by_mid(mid, None).expect("a video send stream").write_rtp(write);
            }
        }
        self.picture += 1;
        self.ts = self.ts.wrapping_add(3000);
        p.drain();
    }
}

/// An AV1 Dependency Descriptor: mandatory fields (template id `3 * sid + tid`, offset 0),
/// and on a key picture's first packet the structure: 9 templates S0T0 S0T1 S0T2 S1T0 .. S2T2,
/// one decode target, no frame diffs, no chains, render sizes 320x180 << s.
fn av1_descriptor(first: bool, last: bool, sid: u8, tid: u8, picture: u32, structure: bool) -> Vec<u8> {
    let mut f: Vec<(u32, u32)> =
        vec![(u32::from(first), 1), (u32::from(last), 1), (u32::from(3 * sid + tid), 6), (picture & 0xFFFF, 16)];
    if structure {
        f.extend([(0b10000, 5), (0, 6), (0, 5)]);
        f.extend([1, 1, 2, 1, 1, 2, 1, 1, 3].map(|idc| (idc, 2)));
        f.extend([(2, 2); 9]); // decode target indications: required
        f.extend([(0, 1); 9]); // no frame diffs
        f.push((0, 1)); // ns(2) = 0 chains
        f.push((1, 1));
        for s in 0..3 {
            f.extend([((320 << s) - 1, 16), ((180 << s) - 1, 16)]);
        }
    }
    let mut out = Vec::new();
    let mut n = 0usize;
    for (v, w) in f {
        for i in (0..w).rev() {
            if n.is_multiple_of(8) {
                out.push(0);
            }
            *out.last_mut().unwrap() |= (((v >> i) & 1) as u8) << (7 - n % 8);
            n += 1;
        }
    }
    out
}

struct Net {
    peers: Vec<Peer>,
    publisher: usize,
    encoder: Encoder,
    /// Set: the publisher sends VP9 SVC instead of VP8 simulcast.
    svc: Option<SvcEncoder>,
    next_frame: Instant,
}

impl Net {
    /// Run for `d`: every peer pumped, the publisher sending 30 fps.
    fn run(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            if self.peers[self.publisher].connected && Instant::now() >= self.next_frame {
                match &mut self.svc {
                    Some(svc) => svc.send_picture(&mut self.peers[self.publisher]),
                    None => self.encoder.send_frame(&mut self.peers[self.publisher]),
                }
                self.next_frame += Duration::from_micros(33_333);
            }
            for p in &mut self.peers {
                p.pump();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn run_until(&mut self, what: &str, limit: Duration, mut cond: impl FnMut(&Net) -> bool) {
        let end = Instant::now() + limit;
        while !cond(self) {
            assert!(Instant::now() < end, "timed out waiting for {what}");
            self.run(Duration::from_millis(20));
        }
    }
}

fn publish(router: &RouterHandle, stream: &str, conn: &str, simulcast: bool, audio: bool, video: bool) -> Peer {
    let (rtc, socket, pending, sdp, mids) = offer(simulcast, audio, video, Direction::SendOnly);
    let answer = router
        .publish(PublishSpec {
            session_id: "s1".into(),
            connection_id: conn.into(),
            stream_id: stream.into(),
            sdp_offer: sdp,
            video_size: video.then_some((1280, 720)),
        })
        .expect("publish answered");
    accept(rtc, socket, pending, &answer, mids)
}

fn subscribe(router: &RouterHandle, stream: &str, sub: &str, wish: VideoWish) -> Peer {
    let (rtc, socket, pending, sdp, mids) = offer(false, false, true, Direction::RecvOnly);
    let answer = router
        .subscribe(SubscribeSpec {
            session_id: "s1".into(),
            connection_id: format!("c-{sub}"),
            subscription_id: sub.into(),
            stream_id: stream.into(),
            sdp_offer: sdp,
            wish,
        })
        .expect("subscribe answered");
    accept(rtc, socket, pending, &answer, mids)
}

fn events_now(rx: &Receiver<RouterEvent>, log: &mut Vec<(Instant, RouterEvent)>) {
    while let Ok(e) = rx.try_recv() {
        log.push((Instant::now(), e));
    }
}

/// Sequence numbers and timestamps of the packets in `rx` continue without a gap or a jump
/// back: every number once, in order, timestamps non-decreasing.
fn assert_continuous(rx: &[Rx]) {
    for w in rx.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence gap between {:?} and {:?}", w[0], w[1]);
        let dt = w[1].ts.wrapping_sub(w[0].ts);
        assert!(dt < 90_000, "timestamp jump of {dt} ticks between {:?} and {:?}", w[0], w[1]);
        // Picture ids step by one a frame, more where a temporal cap thins frames out.
        let dp = w[1].picture_id.wrapping_sub(w[0].picture_id) & 0x7FFF;
        assert!(dp < 8, "picture id jump of {dp} between {:?} and {:?}", w[0], w[1]);
    }
}

#[test]
fn simulcast_layers_switch_at_key_frames_continuously_thin_and_pause() {
    let _serial = media_test_lock();
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let mut log = Vec::new();
    let publisher = publish(&router, "cam", "c-pub", true, false, true);
    let mut net =
        Net { peers: vec![publisher], publisher: 0, encoder: Encoder::new(), svc: None, next_frame: Instant::now() };
    net.run_until("the publisher connected", Duration::from_secs(10), |n| n.peers[0].connected);
    net.next_frame = Instant::now();
    // Media flows before anybody watches: every layer's key frame goes out once, then deltas.
    net.run(Duration::from_millis(1500));
    events_now(&events, &mut log);
    assert!(
        !log.iter().any(|(_, e)| matches!(e.kind, RouterEventKind::LayersWanted(_))),
        "no LayersWanted before a subscriber: {log:?}"
    );
    assert_eq!(net.encoder.keys_sent, [1, 1, 1]);

    // (a) A subscriber joins in the middle of delta frames: nothing until a key frame of its
    // layer (the largest, no wish), which the router asks the publisher for at once.
    net.peers.push(subscribe(&router, "cam", "sub", VideoWish::default()));
    net.run_until("the subscriber's first video", Duration::from_secs(10), |n| !n.peers[1].video.is_empty());
    net.run(Duration::from_millis(1500));
    {
        let got = &net.peers[1].video;
        assert!(got[0].key, "the first packet a new subscriber gets starts a key frame: {:?}", got[0]);
        assert!(got.iter().all(|r| r.layer == 2), "only the largest layer");
        assert!(got.len() > 60, "{} packets in 1.5 s", got.len());
        assert_continuous(got);
    }
    assert_eq!(net.encoder.keys_sent[2], 2, "one key frame asked for on rid f");
    events_now(&events, &mut log);
    let wanted: Vec<&Vec<String>> = log
        .iter()
        .filter_map(|(_, e)| match &e.kind {
            RouterEventKind::LayersWanted(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(wanted, vec![&vec!["f".to_string()]], "{log:?}");
    assert!(
        log.iter().any(|(_, e)| e.kind
            == RouterEventKind::LayerChanged { rid: Some("f".into()), temporal_layer: None, paused: false })
    );

    // (b) The subscriber asks for a small picture: it moves to layer 0 at a key frame of
    // layer 0, numbers and timestamps continuing.
    let before = net.peers[1].video.len();
    let small = VideoWish { video: true, max_size: Some((320, 180)), max_frame_rate: None };
    router.set_video_wish("s1", "sub", small).unwrap();
    net.run_until("layer 0 packets", Duration::from_secs(5), |n| n.peers[1].video.iter().any(|r| r.layer == 0));
    net.run(Duration::from_millis(2500));
    {
        let all = &net.peers[1].video;
        let first_small = before + all[before..].iter().position(|r| r.layer == 0).unwrap();
        assert!(all[first_small].key, "the switch happens at a key frame: {:?}", all[first_small]);
        assert!(all[first_small..].iter().all(|r| r.layer == 0), "no layer 2 after the switch");
        let (last, next) = (&all[first_small - 1], &all[first_small]);
        assert_eq!(last.layer, 2);
        // VP8 picture ids and TL0PICIDX continue too (the layers' own are thousands apart).
        assert_eq!(next.picture_id, (last.picture_id + 1) & 0x7FFF, "{last:?} then {next:?}");
        assert_eq!(next.tl0, last.tl0.wrapping_add(1), "{last:?} then {next:?}");
        let dt = next.ts.wrapping_sub(last.ts);
        let arrival = next.at.duration_since(last.at).as_secs_f64() * 90_000.0;
        assert!(
            dt >= 1 && (dt as f64) < arrival + 9000.0,
            "timestamp step {dt} at the switch, {arrival:.0} ticks apart"
        );
        assert_continuous(&net.peers[1].video);
    }
    events_now(&events, &mut log);
    assert!(
        log.iter().any(|(_, e)| e.kind
            == RouterEventKind::LayerChanged { rid: Some("q".into()), temporal_layer: None, paused: false })
    );
    let wanted: Vec<Vec<String>> = log
        .iter()
        .filter_map(|(_, e)| match &e.kind {
            RouterEventKind::LayersWanted(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    // q joins at once, f leaves after the hold.
    assert_eq!(wanted, vec![vec!["f".to_string()], vec!["q".into(), "f".into()], vec!["q".into()]], "{log:?}");
    let stats = router.stats().unwrap();
    let sub = stats.connections.iter().find(|c| c.connection_id == "c-sub").unwrap();
    assert_eq!(sub.counters.layer_switches, 1);
    assert_eq!(sub.video_layer.as_deref(), Some("q"));

    // (d) At most 8 frames/s: layer 0 keeps TID 0 only (7.5 fps of 30).
    let capped = VideoWish { max_frame_rate: Some(8), ..small };
    router.set_video_wish("s1", "sub", capped).unwrap();
    net.run(Duration::from_millis(300));
    let before = net.peers[1].video.len();
    net.run(Duration::from_millis(2000));
    {
        let got = &net.peers[1].video[before..];
        assert!(got.iter().all(|r| r.tid == 0), "only TID 0 frames");
        let frames = got.len();
        assert!((10..=20).contains(&frames), "{frames} frames in 2 s at 7.5 fps");
        assert_continuous(&net.peers[1].video);
    }
    events_now(&events, &mut log);
    assert!(log.iter().any(|(_, e)| e.kind
        == RouterEventKind::LayerChanged { rid: Some("q".into()), temporal_layer: Some(0), paused: false }));

    // (c) Video off: nothing more, and after the hold no layer is wanted.
    let off = VideoWish { video: false, ..VideoWish::default() };
    let paused_at = Instant::now();
    router.set_video_wish("s1", "sub", off).unwrap();
    net.run(Duration::from_millis(200));
    let before = net.peers[1].video.len();
    net.run(Duration::from_millis(3000));
    assert_eq!(net.peers[1].video.len(), before, "no video while paused");
    events_now(&events, &mut log);
    assert!(
        log.iter()
            .any(|(_, e)| e.kind == RouterEventKind::LayerChanged { rid: None, temporal_layer: None, paused: true })
    );
    let (at, last) = log
        .iter()
        .rev()
        .find_map(|(at, e)| match &e.kind {
            RouterEventKind::LayersWanted(r) => Some((*at, r.clone())),
            _ => None,
        })
        .unwrap();
    assert!(last.is_empty(), "{log:?}");
    assert!(at.duration_since(paused_at) >= Duration::from_millis(1900), "held before dropping");
    assert!(matches!(&log.last().unwrap().1.target, Target::Publisher { .. } | Target::Subscriber { .. }));

    // Back on: wanted again, video resumes at a key frame.
    router.set_video_wish("s1", "sub", VideoWish::default()).unwrap();
    net.run_until("video again", Duration::from_secs(5), |n| n.peers[1].video.len() > before);
    let all = &net.peers[1].video;
    let got = &all[before..];
    assert!(got[0].key && got[0].layer == 2, "{:?}", got[0]);
    // Numbers continue; the timestamp moves on by the time paused.
    assert_eq!(got[0].seq, all[before - 1].seq + 1);
    assert_continuous(got);
    router.shutdown();
}

#[test]
fn the_loudest_audio_publisher_becomes_the_active_speaker() {
    let _serial = media_test_lock();
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    // -60 dBov is below speech; -20 is the loudest.
    let levels: [i8; 3] = [-40, -20, -60];
    let mut peers: Vec<Peer> =
        (0..3).map(|i| publish(&router, &format!("mic{i}"), &format!("c{i}"), false, true, false)).collect();
    let end = Instant::now() + Duration::from_secs(10);
    while !peers.iter().all(|p| p.connected) {
        assert!(Instant::now() < end, "publishers connected");
        for p in &mut peers {
            p.pump();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut seq: HashMap<usize, u64> = HashMap::new();
    let mut log = Vec::new();
    let start = Instant::now();
    let mut next = start;
    while start.elapsed() < Duration::from_secs(3) {
        if Instant::now() >= next {
            next += Duration::from_millis(20);
            for (i, p) in peers.iter_mut().enumerate() {
                let mid = p.mid(MediaKind::Audio);
                let pt = p.pt(Codec::Opus);
                let s = seq.entry(i).or_insert(100);
                *s += 1;
                let ext =
                    ExtensionValues { audio_level: Some(levels[i]), voice_activity: Some(true), ..Default::default() };
                let write =
                    RtpWrite::new(pt, (*s).into(), (*s as u32) * 960, Instant::now(), vec![0xF8; 60]).ext_vals(ext);
                let mut api = p.rtc.direct_api();
                api.stream_tx_by_mid(mid, None).expect("audio send stream").write_rtp(write);
                p.drain();
            }
        }
        for p in &mut peers {
            p.pump();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    events_now(&events, &mut log);
    let speakers: Vec<&RouterEvent> =
        log.iter().map(|(_, e)| e).filter(|e| e.kind == RouterEventKind::ActiveSpeaker).collect();
    assert_eq!(speakers.len(), 1, "one change, to the loudest: {speakers:?}");
    assert_eq!(speakers[0].connection_id, "c1");
    assert_eq!(speakers[0].target, Target::Publisher { stream_id: "mic1".into() });
    router.shutdown();
}

#[test]
fn a_low_estimate_thins_temporal_layers_first_and_probing_lifts_them() {
    let _serial = media_test_lock();
    // Layers of 72, 144 and 216 kbps; the subscriber's estimate starts at 100 kbps (85 kbps with
    // the headroom): under the top layer at half rate (108 kbps) and the middle one at full
    // rate, above the middle one at half rate (72 kbps).
    let mut config = umbra_router::RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.bwe_initial_bps = Some(100_000);
    let (router, events) = common::start_router_with(config);
    let mut log = Vec::new();
    let publisher = publish(&router, "cam", "c-pub", true, false, true);
    let mut net =
        Net { peers: vec![publisher], publisher: 0, encoder: Encoder::new(), svc: None, next_frame: Instant::now() };
    net.run_until("the publisher connected", Duration::from_secs(10), |n| n.peers[0].connected);
    net.next_frame = Instant::now();
    // A full measuring window of every layer before the subscriber comes.
    net.run(Duration::from_millis(1500));
    net.peers.push(subscribe(&router, "cam", "sub", VideoWish::default()));
    net.run_until("the subscriber's first video", Duration::from_secs(10), |n| !n.peers[1].video.is_empty());
    net.run(Duration::from_millis(1000));
    events_now(&events, &mut log);
    let first = log.iter().find_map(|(_, e)| match &e.kind {
        RouterEventKind::LayerChanged { .. } => Some(e.kind.clone()),
        _ => None,
    });
    // Temporal layers go before a spatial layer does, but a larger picture is not thinned
    // below half rate while a smaller one can move: the middle layer at half rate.
    assert_eq!(
        first,
        Some(RouterEventKind::LayerChanged { rid: Some("h".into()), temporal_layer: Some(1), paused: false })
    );
    let thinned = net.peers[1].video.len();
    assert!(net.peers[1].video.iter().all(|r| r.layer == 1 && r.tid <= 1));
    // str0m probes up to what the next candidate needs; once the estimate has held there the
    // subscriber gets more.
    let lifted_at = Instant::now();
    net.run_until("a lifted temporal cap or a larger layer", Duration::from_secs(20), |n| {
        n.peers[1].video[thinned..].iter().any(|r| r.tid > 1 || r.layer > 1)
    });
    events_now(&events, &mut log);
    let changes: Vec<&RouterEventKind> =
        log.iter().map(|(_, e)| &e.kind).filter(|k| matches!(k, RouterEventKind::LayerChanged { .. })).collect();
    let stats = router.stats().unwrap();
    let sub = stats.connections.iter().find(|c| c.connection_id == "c-sub").unwrap();
    eprintln!("lifted after {:?}; estimate {:?} bps; changes {changes:?}", lifted_at.elapsed(), sub.bwe_estimate_bps);
    assert!(sub.bwe_estimate_bps.unwrap_or(0) > 108_000, "{:?}", sub.bwe_estimate_bps);
    // And on to every temporal layer.
    let end = Instant::now() + Duration::from_secs(20);
    while !log.iter().any(|(_, e)| {
        e.kind == RouterEventKind::LayerChanged { rid: Some("f".into()), temporal_layer: None, paused: false }
    }) {
        assert!(Instant::now() < end, "the full top layer within 20 s: {log:?}");
        net.run(Duration::from_millis(50));
        events_now(&events, &mut log);
    }
    net.run(Duration::from_millis(500));
    assert!(net.peers[1].video.iter().rev().take(20).any(|r| r.tid == 2));
    assert_continuous(&net.peers[1].video);
    router.shutdown();
}

/// The packets of `rx` carry every sequence number once, in order; each picture ends with the
/// marker on the last packet of its highest spatial layer there, and nowhere else.
fn assert_svc_pictures(rx: &[SvcRx]) {
    for w in rx.windows(2) {
        assert_eq!(w[1].seq, w[0].seq + 1, "sequence gap between {:?} and {:?}", w[0], w[1]);
        let picture_ends = w[1].picture != w[0].picture;
        assert_eq!(w[0].marker, picture_ends, "marker of {:?} (next {:?})", w[0], w[1]);
    }
}

#[test]
fn vp9_svc_spatial_layers_follow_the_wish_with_pictures_ending_at_the_top_forwarded_layer() {
    svc_layers_follow_the_wish(Codec::Vp9);
}

#[test]
fn av1_svc_layers_are_read_from_the_dependency_descriptor_which_reaches_the_subscriber() {
    svc_layers_follow_the_wish(Codec::Av1);
}

fn svc_layers_follow_the_wish(codec: Codec) {
    let _serial = media_test_lock();
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let mut log = Vec::new();
    let publisher = publish(&router, "cam", "c-pub", false, false, true);
    let mut net = Net {
        peers: vec![publisher],
        publisher: 0,
        encoder: Encoder::new(),
        svc: Some(SvcEncoder::new(codec)),
        next_frame: Instant::now(),
    };
    net.run_until("the publisher connected", Duration::from_secs(10), |n| n.peers[0].connected);
    net.next_frame = Instant::now();
    net.run(Duration::from_millis(1200));
    let small = VideoWish { video: true, max_size: Some((320, 180)), max_frame_rate: None };

    // (a) Joins: the small subscriber gets spatial layer 0 only, the other all three; both
    // start at a key picture (asked for at once), and each picture ends at its top layer.
    net.peers.push(subscribe(&router, "cam", "small", small));
    net.peers.push(subscribe(&router, "cam", "full", VideoWish::default()));
    net.run_until("both subscribers' video", Duration::from_secs(10), |n| {
        n.peers[1].svc.len() > 30 && n.peers[2].svc.len() > 60
    });
    net.run(Duration::from_millis(1000));
    for (peer, top) in [(1, 0u8), (2, 2)] {
        let got = &net.peers[peer].svc;
        assert!(got[0].key, "peer {peer} starts at a key picture: {:?}", got[0]);
        assert!(got.iter().all(|r| r.sid <= top), "peer {peer}: only layers up to {top}");
        assert!(got.iter().any(|r| r.sid == top), "peer {peer}: layer {top} arrives");
        assert!(got.iter().all(|r| r.dd == (codec == Codec::Av1)), "the Dependency Descriptor goes with AV1 only");
        assert_svc_pictures(got);
    }

    // (b) Down without a key picture: the full subscriber asks for a small picture and gets
    // only layer 0 from the next picture on, numbers continuing.
    let keys = net.svc.as_ref().unwrap().keys_sent;
    router.set_video_wish("s1", "full", small).unwrap();
    net.run(Duration::from_millis(1500));
    {
        let got = &net.peers[2].svc;
        let last_big = got.iter().rposition(|r| r.sid > 0).unwrap();
        let picture = got[last_big].picture;
        assert!(
            got[last_big + 1..].iter().all(|r| r.sid == 0 && r.picture > picture),
            "after its last layer-2 picture only layer 0"
        );
        assert!(got.len() - last_big > 30, "layer 0 flows on");
        assert_svc_pictures(got);
    }
    assert_eq!(net.svc.as_ref().unwrap().keys_sent, keys, "no key picture asked for to go down");

    // (c) Up at a key picture: the small subscriber's wish is lifted; the router asks for a
    // key picture and layers 1 and 2 start exactly there.
    let before = net.peers[1].svc.len();
    router.set_video_wish("s1", "small", VideoWish::default()).unwrap();
    net.run_until("layer 2 at the small subscriber", Duration::from_secs(5), |n| {
        n.peers[1].svc[before..].iter().any(|r| r.sid == 2)
    });
    net.run(Duration::from_millis(500));
    {
        let got = &net.peers[1].svc;
        let first_big = before + got[before..].iter().position(|r| r.sid > 0).unwrap();
        let start = got[..first_big].iter().rposition(|r| r.picture != got[first_big].picture).unwrap() + 1;
        assert!(got[start].key, "the up-switch picture is a key picture: {:?}", got[start]);
        assert_svc_pictures(got);
    }
    assert_eq!(net.svc.as_ref().unwrap().keys_sent, keys + 1, "one key picture for the up-switch");

    // (d) A frame-rate cap thins temporal layers of the SVC stream too.
    router.set_video_wish("s1", "full", VideoWish { max_frame_rate: Some(8), ..small }).unwrap();
    net.run(Duration::from_millis(300));
    let before = net.peers[2].svc.len();
    net.run(Duration::from_millis(2000));
    {
        let got = &net.peers[2].svc[before..];
        assert!(got.iter().all(|r| r.tid == 0 && r.sid == 0), "layer 0 at TID 0 only");
        assert!((10..=20).contains(&got.len()), "{} pictures in 2 s at 7.5 fps", got.len());
        assert_svc_pictures(&net.peers[2].svc);
    }
    events_now(&events, &mut log);
    assert!(
        log.iter().any(|(_, e)| matches!(e.kind, RouterEventKind::LayerChanged { temporal_layer: Some(0), .. })),
        "{log:?}"
    );
    router.shutdown();
}
