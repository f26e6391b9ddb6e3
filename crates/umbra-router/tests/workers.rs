//! Media workers: sessions are spread over worker threads, each with its own sockets, and every
//! worker forwards its sessions' media (real UDP on loopback, real DTLS-SRTP).

mod common;

use std::time::{Duration, Instant};

use common::*;
use str0m::media::MediaKind;
use umbra_router::*;

fn publish_in(router: &RouterHandle, clients: &Clients, session: &str) -> (PeerId, String) {
    let p = offer(&PeerOptions::publisher(loopback_v4()));
    let answer = router
        .publish(PublishSpec {
            session_id: session.into(),
            connection_id: format!("{session}-pub"),
            stream_id: "cam".into(),
            sdp_offer: p.offer.clone(),
            video_size: None,
        })
        .expect("publish answered");
    (clients.add(p.accept(&answer)), answer)
}

fn subscribe_in(router: &RouterHandle, clients: &Clients, session: &str) -> (PeerId, String) {
    let p = offer(&PeerOptions::subscriber(loopback_v4()));
    let answer = router
        .subscribe(SubscribeSpec {
            session_id: session.into(),
            connection_id: format!("{session}-sub"),
            subscription_id: "sub".into(),
            stream_id: "cam".into(),
            sdp_offer: p.offer.clone(),
            wish: Default::default(),
        })
        .expect("subscribe answered");
    (clients.add(p.accept(&answer)), answer)
}

fn candidate_port(answer: &str) -> u16 {
    let line = answer.lines().find(|l| l.starts_with("a=candidate:")).expect("a candidate");
    line.split_whitespace().nth(5).and_then(|p| p.parse().ok()).expect("a port")
}

#[test]
fn two_sessions_land_on_two_workers_and_both_forward() {
    let _serial = media_test_lock();
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.media_workers = 2;
    let (router, _events) = start_router_with(config);
    let workers = router.worker_addrs();
    assert_eq!(workers.len(), 2);
    assert_ne!(workers[0][0].port(), workers[1][0].port(), "each worker has its own port");

    let clients = Clients::new(true);
    let (pub_a, answer_a) = publish_in(&router, &clients, "a");
    let (pub_b, answer_b) = publish_in(&router, &clients, "b");
    let (sub_a, sub_answer_a) = subscribe_in(&router, &clients, "a");
    let (sub_b, sub_answer_b) = subscribe_in(&router, &clients, "b");
    assert_eq!((router.worker_of("a"), router.worker_of("b")), (Some(0), Some(1)));
    // Every connection of a session is answered with its worker's port.
    assert_eq!(candidate_port(&answer_a), workers[0][0].port());
    assert_eq!(candidate_port(&sub_answer_a), workers[0][0].port());
    assert_eq!(candidate_port(&answer_b), workers[1][0].port());
    assert_eq!(candidate_port(&sub_answer_b), workers[1][0].port());
    clients.wait_until("all connected", Duration::from_secs(20), |s| s.iter().all(|p| p.connected));

    // Both publishers at once, paced in real time.
    let start = Instant::now();
    let (mut v, mut a) = (0u32, 0u32);
    while start.elapsed() < Duration::from_secs(2) {
        let t = start.elapsed().as_secs_f64();
        while (v as f64) < t * 30.0 {
            for p in [pub_a, pub_b] {
                clients.write(p, MediaKind::Video, frame(v, MediaKind::Video, 4000));
            }
            v += 1;
        }
        while (a as f64) < t * 50.0 {
            for p in [pub_a, pub_b] {
                clients.write(p, MediaKind::Audio, frame(a, MediaKind::Audio, 120));
            }
            a += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    clients.with(|st| {
        for s in [sub_a, sub_b] {
            let gv = check_frames(&st[s], MediaKind::Video, 4000);
            let ga = check_frames(&st[s], MediaKind::Audio, 4000);
            assert!(gv as f64 >= 0.9 * v as f64, "subscriber {s}: {gv} of {v} video frames");
            assert!(ga as f64 >= 0.9 * a as f64, "subscriber {s}: {ga} of {a} audio frames");
        }
    });
    let stats = router.stats().unwrap();
    assert_eq!(stats.workers.len(), 2);
    for w in &stats.workers {
        assert_eq!(w.connections, 2, "worker {}: {w:?}", w.index);
        assert!(w.frames_forwarded as f64 >= 0.9 * (v + a) as f64, "worker {} forwarded too little: {w:?}", w.index);
        assert!(w.thread_cpu > Duration::ZERO);
    }
    assert_eq!(stats.connections.len(), 4);
    assert_eq!(stats.totals.frames_forwarded, stats.workers.iter().map(|w| w.frames_forwarded).sum::<u64>());

    // A session leaves no trace once its connections are gone; the next one goes to the
    // emptier worker.
    router.unpublish("a", "cam").unwrap();
    assert_eq!(router.worker_of("a"), None);
    assert!(matches!(router.unpublish("a", "cam"), Err(RouterError::UnknownStream { .. })));
    let (_c, _answer) = publish_in(&router, &clients, "c");
    assert_eq!(router.worker_of("c"), Some(0));
    router.shutdown();
    assert!(matches!(router.unpublish("c", "cam"), Err(RouterError::Stopped)));
    assert!(matches!(router.stats(), Err(RouterError::Stopped)));
}

#[test]
fn a_base_port_gives_each_worker_the_next_port() {
    // A free base port with a free port after it: ask the kernel, and retry a few times if
    // another process takes one in between.
    for _ in 0..10 {
        let base = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if base == u16::MAX {
            continue;
        }
        let mut config = RouterConfig::new(vec![format!("127.0.0.1:{base}").parse().unwrap()]);
        config.media_workers = 2;
        match Router::start(config) {
            Ok(r) => {
                let ports: Vec<u16> = r.worker_addrs().iter().map(|a| a[0].port()).collect();
                assert_eq!(ports, vec![base, base + 1]);
                r.shutdown();
                return;
            }
            Err(RouterError::Bind { .. }) => continue,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free pair of ports found");
}

#[test]
fn zero_workers_and_a_range_past_the_last_port_are_refused() {
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.media_workers = 0;
    assert!(matches!(Router::start(config), Err(RouterError::Config(_))));
    let mut config = RouterConfig::new(vec!["127.0.0.1:65535".parse().unwrap()]);
    config.media_workers = 2;
    assert!(matches!(Router::start(config), Err(RouterError::Config(_)) | Err(RouterError::Bind { .. })));
}
