//! Each video codec end to end through a real `umbra serve` (its str0m router, real UDP on
//! loopback), end-to-end encrypted, with the real encoders and decoders and str0m's real
//! packetizers on both sides: the picture checked against the source (PSNR), a wrong secret
//! (one mismatch, nothing decoded), 5 % loss repaired, and the decrypted encoded frames a
//! recorder subscribes to. Then VP9 and H.264 in a relayed session (publisher and subscriber
//! negotiate directly).
//!
//! One server per codec, with a lossy UDP relay in front of its router whose loss rate the
//! test turns up for the last phase. The codecs run one after another (a lock): they measure
//! frame rates, and three at once on a small machine would measure the machine.

mod support;

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::client::Client;
use support::server::Server;
use umbra_client::media::VideoFrame;
use umbra_client::media::analysis::psnr;
use umbra_client::media::pattern::TestPattern;
use umbra_client::{
    ClientError, Codec, EncodedFrame, Event, MediaKind, PublisherEvent, PublisherSettings, SubscribeOptions,
    SubscriberEvent, VideoCodec,
};

const SECRET: &str = "correct horse battery staple";
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn vp8_end_to_end() {
    end_to_end(VideoCodec::Vp8);
}

#[test]
fn vp9_end_to_end() {
    end_to_end(VideoCodec::Vp9);
}

#[test]
fn h264_end_to_end() {
    end_to_end(VideoCodec::H264);
}

fn end_to_end(codec: VideoCodec) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let router_port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let relay_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let relay_addr = relay_socket.local_addr().unwrap().to_string();
    let bind = format!("127.0.0.1:{router_port}");
    // One worker: the relay forwards to the first worker's port only.
    let server = Server::start_media_on(&bind, &["--media-advertise", &relay_addr, "--media-workers", "1"]);
    let relay = LossyRelay::start(relay_socket, bind.parse().unwrap());
    let app = server.e2ee_project("codecs");
    let session_id = app.create_e2ee_session().unwrap();

    let mut publisher = Client::new(&app, &session_id, SECRET);
    publisher.session.publish(PublisherSettings::test_pattern("camera").with_video_codec(codec)).unwrap();
    publisher
        .wait(Duration::from_secs(20), |e| matches!(e, Event::Publisher { event: PublisherEvent::MediaConnected, .. }))
        .unwrap_or_else(|| panic!("{codec}: publisher media never connected: {:?}", publisher.seen));

    // Phase 1, no loss: a subscriber that decodes and also takes the encoded frames, and one
    // with a wrong secret.
    let mut good = Client::new(&app, &session_id, SECRET);
    let stream = good.stream_id();
    let opts = SubscribeOptions::default().with_encoded_frames(true);
    good.session.subscribe_with(&stream, opts).unwrap();
    let mut wrong = Client::new(&app, &session_id, "a different secret");
    let wrong_id = wrong.session.subscribe(&stream).unwrap();
    good.wait(Duration::from_secs(20), |e| {
        matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. })
    })
    .unwrap_or_else(|| panic!("{codec}: no picture: {:?}", good.seen));
    let events = good.collect(Duration::from_secs(3));

    let codecs: Vec<VideoCodec> = good
        .seen
        .iter()
        .filter_map(|e| match e {
            Event::Subscriber { event: SubscriberEvent::VideoCodec(c), .. } => Some(*c),
            _ => None,
        })
        .collect();
    assert_eq!(codecs, vec![codec], "the subscriber learns the stream's codec once");

    let pattern = TestPattern::new(320, 240);
    let pictures = video_frames(&events);
    let scores: Vec<f64> = pictures
        .iter()
        .filter_map(|f| TestPattern::read_frame_number(f).and_then(|n| psnr(&pattern.frame(n), f)))
        .collect();
    assert!(scores.len() >= 60, "{codec}: {} numbered pictures in 3 s", scores.len());
    let sharp = scores.iter().filter(|p| **p >= 30.0).count();
    assert!(sharp * 100 >= scores.len() * 95, "{codec}: only {sharp}/{} pictures at >= 30 dB", scores.len());

    // The encoded frames since subscribing: every decrypted frame, in the stream's codec, video
    // on the 90 kHz clock; the first key frame (the one a new subscriber asks for) and all
    // after it decode here as they did in the SDK.
    let history: Vec<&Event> = good.seen.iter().chain(&events).collect();
    let encoded: Vec<&EncodedFrame> = history
        .iter()
        .filter_map(|e| match e {
            Event::Subscriber { event: SubscriberEvent::EncodedFrame(f), .. } => Some(f),
            _ => None,
        })
        .collect();
    let video: Vec<&EncodedFrame> = encoded.iter().copied().filter(|f| f.kind == MediaKind::Video).collect();
    let audio = encoded.iter().filter(|f| f.kind == MediaKind::Audio).count();
    assert!(video.len() >= 60 && audio >= 100, "{codec}: {} video and {audio} audio frames", video.len());
    assert!(video.iter().all(|f| f.codec == Codec::Video(codec) && f.clock_rate == 90_000));
    assert!(encoded.iter().filter(|f| f.kind == MediaKind::Audio).all(|f| f.codec == Codec::Opus));
    assert!(video.windows(2).all(|w| w[1].rtp_timestamp > w[0].rtp_timestamp), "{codec}: timestamps increase");
    if codec == VideoCodec::H264 {
        // Annex B survived encryption, the router and both packetizers.
        assert!(video.iter().all(|f| f.data.starts_with(&[0, 0, 0, 1]) || f.data.starts_with(&[0, 0, 1])));
    }
    let k = video.iter().position(|f| f.keyframe).unwrap_or_else(|| panic!("{codec}: no key frame"));
    let mut decoder = umbra_client::media::VideoDecoder::new(codec).unwrap();
    let decoded: usize = video[k..].iter().map(|f| decoder.decode(&f.data).map(|p| p.len()).unwrap_or(0)).sum();
    assert!(decoded + 2 >= video.len() - k, "{codec}: {decoded} of {} frames decode", video.len() - k);
    let keys = video[k + 1..].iter().filter(|f| f.keyframe).count();
    assert!(keys * 4 < video.len() - k, "{codec}: {keys} key frames: the flag must tell them from deltas");

    let wrong_events = wrong.collect(Duration::from_millis(200));
    let all_wrong: Vec<Event> = wrong.seen.iter().chain(&wrong_events).cloned().collect();
    assert_eq!(count(&all_wrong, |e| matches!(e, SubscriberEvent::VideoFrame(_))), 0, "{codec}: nothing decoded");
    assert_eq!(count(&all_wrong, |e| matches!(e, SubscriberEvent::EncryptionSecretMismatch)), 1, "{codec}");
    assert_eq!(count(&all_wrong, |e| matches!(e, SubscriberEvent::Error(ClientError::EncryptionSecretMismatch))), 1);
    let stats = wrong.session.subscriber_stats(wrong_id);
    assert_eq!(stats.video_frames_decoded, 0);
    assert!(stats.video_frames_received > 30, "{codec}: frames did arrive ({stats:?})");
    drop(wrong);

    // Phase 2: 5 % of the datagrams in both directions are lost; NACK/RTX and key frame
    // requests keep the picture going.
    relay.set_loss_percent(5);
    let mut lossy = Client::new(&app, &session_id, SECRET);
    lossy.session.subscribe(&stream).unwrap();
    lossy
        .wait(Duration::from_secs(20), |e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. }))
        .unwrap_or_else(|| panic!("{codec}: no picture through loss"));
    let events = lossy.collect(Duration::from_secs(6));
    let (dropped, total) = relay.counts();
    assert!(dropped * 100 >= total * 3, "{codec}: the relay dropped {dropped} of {total}");
    let numbers: BTreeSet<u32> =
        video_frames(&events).iter().filter_map(|f| TestPattern::read_frame_number(f)).collect();
    assert!(numbers.len() >= 6 * 30 * 80 / 100, "{codec}: {} distinct pictures in 6 s through 5% loss", numbers.len());
    assert_eq!(count(&events, |e| matches!(e, SubscriberEvent::EncryptionSecretMismatch)), 0, "loss is no mismatch");
    drop(server);
}

/// Relayed sessions: the subscriber's offer (all three codecs) goes to the publisher, whose
/// answer names its one codec; media flows peer to peer.
#[test]
fn relayed_vp9_and_h264_reach_a_native_subscriber() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let server = Server::start(&[]);
    let app = server.project("relayed-codecs");
    let pattern = TestPattern::new(320, 240);
    for codec in [VideoCodec::Vp9, VideoCodec::H264] {
        let session_id = app.create_session(true).unwrap();
        let publisher = Client::new_plain(&app, &session_id);
        publisher.session.publish(PublisherSettings::test_pattern("camera").with_video_codec(codec)).unwrap();
        let mut sub = Client::new_plain(&app, &session_id);
        let stream = sub.stream_id();
        sub.session.subscribe(&stream).unwrap();
        sub.wait(Duration::from_secs(20), |e| {
            matches!(e, Event::Subscriber { event: SubscriberEvent::VideoFrame(_), .. })
        })
        .unwrap_or_else(|| panic!("{codec}: no picture in a relayed session: {:?}", sub.seen));
        assert!(
            sub.seen
                .iter()
                .any(|e| matches!(e, Event::Subscriber { event: SubscriberEvent::VideoCodec(c), .. } if *c == codec)),
            "{codec}: the stream arrived in another codec"
        );
        let events = sub.collect(Duration::from_secs(2));
        let scores: Vec<f64> = video_frames(&events)
            .iter()
            .filter_map(|f| TestPattern::read_frame_number(f).and_then(|n| psnr(&pattern.frame(n), f)))
            .collect();
        let sharp = scores.iter().filter(|p| **p >= 30.0).count();
        assert!(scores.len() >= 40 && sharp * 100 >= scores.len() * 95, "{codec}: {sharp}/{} sharp", scores.len());
    }
}

impl Client {
    fn stream_id(&mut self) -> String {
        match self.wait(Duration::from_secs(20), |e| matches!(e, Event::StreamCreated(_))) {
            Some(Event::StreamCreated(s)) => s.stream_id,
            _ => panic!("no stream appeared"),
        }
    }
}

fn video_frames(events: &[Event]) -> Vec<&VideoFrame> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Subscriber { event: SubscriberEvent::VideoFrame(f), .. } => Some(f),
            _ => None,
        })
        .collect()
}

fn count(events: &[Event], pred: impl Fn(&SubscriberEvent) -> bool) -> usize {
    events.iter().filter(|e| matches!(e, Event::Subscriber { event, .. } if pred(event))).count()
}

/// A UDP relay between the clients and the router (which advertises the relay's address) that
/// drops a settable share of datagrams in both directions.
struct LossyRelay {
    stop: Arc<AtomicBool>,
    loss_percent: Arc<AtomicU32>,
    counts: Arc<Mutex<(u64, u64)>>,
}

impl LossyRelay {
    fn start(listen: UdpSocket, router: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let loss_percent = Arc::new(AtomicU32::new(0));
        let counts = Arc::new(Mutex::new((0u64, 0u64)));
        let (stop2, loss2, counts2) = (stop.clone(), loss_percent.clone(), counts.clone());
        std::thread::spawn(move || {
            listen.set_nonblocking(true).unwrap();
            let mut upstream: HashMap<SocketAddr, UdpSocket> = HashMap::new();
            let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut lose = move || {
                // xorshift64: reproducible, and no dependency for a coin.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let percent = loss2.load(Ordering::Relaxed) as u64;
                let lost = rng % 100 < percent;
                let mut c = counts2.lock().unwrap();
                if percent > 0 {
                    c.1 += 1;
                    c.0 += lost as u64;
                }
                lost
            };
            let mut buf = [0u8; 2048];
            let deadline = Instant::now() + Duration::from_secs(180);
            while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                let mut idle = true;
                while let Ok((n, from)) = listen.recv_from(&mut buf) {
                    idle = false;
                    let up = upstream.entry(from).or_insert_with(|| {
                        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                        s.set_nonblocking(true).unwrap();
                        s.connect(router).unwrap();
                        s
                    });
                    if !lose() {
                        let _ = up.send(&buf[..n]);
                    }
                }
                for (client, up) in &upstream {
                    while let Ok(n) = up.recv(&mut buf) {
                        idle = false;
                        if !lose() {
                            let _ = listen.send_to(&buf[..n], client);
                        }
                    }
                }
                if idle {
                    std::thread::sleep(Duration::from_micros(300));
                }
            }
        });
        Self { stop, loss_percent, counts }
    }

    fn set_loss_percent(&self, p: u32) {
        self.loss_percent.store(p, Ordering::Relaxed);
    }

    /// (dropped, seen) since the loss was turned up.
    fn counts(&self) -> (u64, u64) {
        *self.counts.lock().unwrap()
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
