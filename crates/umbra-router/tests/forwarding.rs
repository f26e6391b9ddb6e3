//! Publisher → router → subscribers over real loopback UDP with real DTLS-SRTP.

mod common;

use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use str0m::media::MediaKind;
use umbra_router::*;

fn start_router(bind: Vec<std::net::SocketAddr>) -> (RouterHandle, mpsc::Receiver<RouterEvent>) {
    let (tx, rx) = mpsc::channel();
    let mut config = RouterConfig::new(bind);
    config.on_event = Some(Box::new(move |e| {
        let _ = tx.send(e);
    }));
    (Router::start(config).expect("router starts"), rx)
}

fn publish(router: &RouterHandle, clients: &Clients, opts: &PeerOptions, stream: &str, conn: &str) -> PeerId {
    let p = offer(opts);
    let answer = router
        .publish(PublishSpec {
            session_id: "s1".into(),
            connection_id: conn.into(),
            stream_id: stream.into(),
            sdp_offer: p.offer.clone(),
        })
        .expect("publish answered");
    clients.add(p.accept(&answer))
}

fn subscribe(router: &RouterHandle, clients: &Clients, opts: &PeerOptions, stream: &str, sub: &str, conn: &str) -> PeerId {
    let p = offer(opts);
    let answer = router
        .subscribe(SubscribeSpec {
            session_id: "s1".into(),
            connection_id: conn.into(),
            subscription_id: sub.into(),
            stream_id: stream.into(),
            sdp_offer: p.offer.clone(),
        })
        .expect("subscribe answered");
    clients.add(p.accept(&answer))
}

/// Send `secs` seconds of 30 fps video and 50 fps audio, paced in real time.
fn send_media(clients: &Clients, publisher: PeerId, secs: f64, video_len: usize) -> (u32, u32) {
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

/// Frames of one kind a subscriber got: all byte-equal to what was sent and in order;
/// returns how many.
fn check_frames(st: &PeerState, kind: MediaKind, video_len: usize) -> usize {
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

#[test]
fn one_publisher_three_subscribers_receive_exactly_the_frames_sent() {
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let clients = Clients::new(true);
    let ip = loopback_v4();
    let publisher = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "c-pub");
    let subs: Vec<PeerId> = (0..3)
        .map(|i| subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", &format!("sub{i}"), &format!("c{i}")))
        .collect();
    clients.wait_until("all peers connected", Duration::from_secs(15), |s| s.iter().all(|p| p.connected));
    // The router reports Connected for all four peer connections.
    let mut connected = 0;
    while connected < 4 {
        let e = events.recv_timeout(Duration::from_secs(10)).expect("connected events");
        assert_eq!(e.kind, RouterEventKind::Connected, "{e:?}");
        connected += 1;
    }
    let (v, a) = send_media(&clients, publisher, 3.0, 6000);
    std::thread::sleep(Duration::from_millis(500));
    clients.with(|st| {
        for &s in &subs {
            let gv = check_frames(&st[s], MediaKind::Video, 6000);
            let ga = check_frames(&st[s], MediaKind::Audio, 6000);
            assert!(gv as f64 >= 0.95 * v as f64, "subscriber {s}: {gv} of {v} video frames");
            assert!(ga as f64 >= 0.95 * a as f64, "subscriber {s}: {ga} of {a} audio frames");
        }
    });
    let stats = router.stats().unwrap();
    assert_eq!(stats.published_streams, 1);
    assert_eq!(stats.subscriptions, 3);
    assert!(stats.totals.frames_forwarded >= 3 * (v + a) as u64 * 95 / 100, "{:?}", stats.totals);
    assert!(stats.forward_latency.count() >= (v + a) as u64 * 95 / 100);
    assert_eq!(stats.connections.len(), 4);
    assert!(stats.router_thread_cpu > Duration::ZERO);
    router.shutdown();
    assert!(matches!(router.stats(), Err(RouterError::Stopped)));
}
