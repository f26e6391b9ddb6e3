//! Keyframe requests, teardown, failures and bad input.

mod common;

use std::time::{Duration, Instant};

use common::*;
use str0m::media::{KeyframeRequestKind, MediaKind};
use umbra_router::*;

fn events_until(events: &std::sync::mpsc::Receiver<RouterEvent>, n: usize, timeout: Duration) -> Vec<RouterEvent> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) => out.push(e),
            Err(_) => panic!("only {} of {n} events: {out:?}", out.len()),
        }
    }
    out
}

/// Keep the publisher sending video in the background until the returned guard drops.
struct Sender {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Sender {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn keep_sending(clients: std::sync::Arc<Clients>, publisher: PeerId) -> Sender {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut seq = 0;
        // Bounded: at most 60 s of frames even if the test forgets to stop it.
        while !s.load(std::sync::atomic::Ordering::Relaxed) && seq < 1800 {
            clients.write(publisher, MediaKind::Video, frame(seq, MediaKind::Video, 1200));
            clients.write(publisher, MediaKind::Audio, frame(seq, MediaKind::Audio, 120));
            seq += 1;
            std::thread::sleep(Duration::from_millis(33));
        }
    });
    Sender { stop, thread: Some(thread) }
}

#[test]
fn keyframe_requests_new_subscriber_and_relay() {
    let _serial = media_test_lock();
    // A long coalescing interval, so the burst below fits in it even on a starved machine.
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.keyframe_request_interval = Duration::from_secs(1);
    let (router, _events) = start_router_with(config);
    let clients = std::sync::Arc::new(Clients::new(false));
    let ip = loopback_v4();
    let publisher = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "c-pub");
    clients.wait_until("publisher connected", Duration::from_secs(15), |s| s[publisher].connected);
    let _sending = keep_sending(clients.clone(), publisher);
    std::thread::sleep(Duration::from_millis(300));
    assert!(clients.with(|s| s[publisher].keyframe_requests.is_empty()), "no subscriber yet, no request");

    // A new subscriber: the router asks the publisher for a keyframe as soon as it connects.
    let sub = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", "sub", "c-sub");
    clients.wait_until("subscriber connected", Duration::from_secs(15), |s| s[sub].connected);
    let connected_at = Instant::now();
    clients.wait_until("a keyframe request at the publisher", Duration::from_secs(3), |s| {
        s[publisher].keyframe_requests.iter().any(|(k, _, _)| *k == MediaKind::Video)
    });
    assert!(connected_at.elapsed() < Duration::from_secs(1), "keyframe request took {:?}", connected_at.elapsed());
    clients.wait_until("frames at the subscriber", Duration::from_secs(5), |s| s[sub].frames[1] >= 5);
    let originated = router.stats().unwrap().totals.keyframe_requests_originated;
    assert!(originated >= 1);

    // The subscriber's own PLI and FIR reach the publisher (after the coalescing interval).
    for kind in [KeyframeRequestKind::Pli, KeyframeRequestKind::Fir] {
        std::thread::sleep(Duration::from_millis(1100));
        let before = clients.with(|s| s[publisher].keyframe_requests.len());
        clients.request_keyframe(sub, kind);
        clients.wait_until("the relayed keyframe request", Duration::from_secs(3), |s| {
            s[publisher].keyframe_requests.len() > before
        });
        let got = clients.with(|s| s[publisher].keyframe_requests.last().unwrap().1);
        assert_eq!(got, kind, "relayed as the kind asked for");
    }
    let totals = router.stats().unwrap().totals;
    assert!(totals.keyframe_requests_relayed >= 2, "{totals:?}");

    // A burst of requests within the interval becomes one.
    std::thread::sleep(Duration::from_millis(1100));
    let burst_start = Instant::now();
    let before = clients.with(|s| s[publisher].keyframe_requests.len());
    let coalesced_before = router.stats().unwrap().totals.keyframe_requests_coalesced;
    // Spaced so the subscriber's str0m sends each as its own RTCP packet; all within the
    // router's 1 s interval.
    for _ in 0..4 {
        clients.request_keyframe(sub, KeyframeRequestKind::Pli);
        std::thread::sleep(Duration::from_millis(30));
    }
    std::thread::sleep(Duration::from_millis(100));
    let after = clients.with(|s| s[publisher].keyframe_requests.len());
    assert!(burst_start.elapsed() < Duration::from_millis(900), "the machine is too starved to time the burst");
    assert_eq!(after - before, 1, "four PLIs within the interval reach the publisher as one");
    let coalesced = router.stats().unwrap().totals.keyframe_requests_coalesced - coalesced_before;
    assert!(coalesced >= 1, "the router folded {coalesced} requests");
}

#[test]
fn unsubscribe_unpublish_disconnect_tear_down_and_clean_maps() {
    let _serial = media_test_lock();
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let clients = std::sync::Arc::new(Clients::new(false));
    let ip = loopback_v4();
    let cam = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "alice");
    let screen = publish(&router, &clients, &PeerOptions::publisher(ip), "screen", "alice");
    let s1 = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", "bob-cam", "bob");
    let s2 = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", "carol-cam", "carol");
    let s3 = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "screen", "bob-screen", "bob");
    // Alice also subscribes to nothing; Carol publishes nothing. Dave subscribes to the screen.
    let s4 = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "screen", "dave-screen", "dave");
    clients.wait_until("all connected", Duration::from_secs(20), |s| s.iter().all(|p| p.connected));
    let connected = events_until(&events, 6, Duration::from_secs(10));
    assert!(connected.iter().all(|e| e.kind == RouterEventKind::Connected));
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions, stats.connections.len()), (2, 4, 6));
    assert_eq!(stats.demux_sizes, (6, 6, 6));

    let _cam_media = keep_sending(clients.clone(), cam);
    let _screen_media = keep_sending(clients.clone(), screen);
    clients
        .wait_until("media flowing", Duration::from_secs(5), |s| [s1, s2, s3, s4].iter().all(|&i| s[i].frames[1] > 3));

    // Unsubscribe: only that subscriber goes; the caller asked, so no event.
    router.unsubscribe("s1", "bob-cam").unwrap();
    let n1 = clients.with(|s| s[s1].frames[1]);
    let n2 = clients.with(|s| s[s2].frames[1]);
    std::thread::sleep(Duration::from_millis(400));
    assert!(clients.with(|s| s[s1].frames[1]) <= n1 + 1, "unsubscribed peer keeps receiving");
    assert!(clients.with(|s| s[s2].frames[1]) > n2 + 3, "the other subscriber stopped receiving");
    assert_eq!(router.stats().unwrap().subscriptions, 3);
    assert!(matches!(router.unsubscribe("s1", "bob-cam"), Err(RouterError::UnknownSubscription { .. })));

    // Unpublish: its remaining subscriber is closed and told why.
    router.unpublish("s1", "cam").unwrap();
    let e = events.recv_timeout(Duration::from_secs(5)).expect("stream-ended event");
    assert_eq!(e.kind, RouterEventKind::Closed(CloseReason::StreamEnded));
    assert_eq!(e.target, Target::Subscriber { subscription_id: "carol-cam".into() });
    assert_eq!(e.connection_id, "carol");
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions, stats.connections.len()), (1, 2, 3));
    assert!(matches!(router.unpublish("s1", "cam"), Err(RouterError::UnknownStream { .. })));
    assert!(matches!(
        router.subscribe(SubscribeSpec {
            session_id: "s1".into(),
            connection_id: "x".into(),
            subscription_id: "late".into(),
            stream_id: "cam".into(),
            sdp_offer: offer(&PeerOptions::subscriber(ip)).offer,
            wish: Default::default(),
        }),
        Err(RouterError::UnknownStream { .. })
    ));

    // Disconnect Bob: his screen subscription goes; Dave's stays.
    router.disconnect("s1", "bob").unwrap();
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions), (1, 1));
    let n4 = clients.with(|s| s[s4].frames[1]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(clients.with(|s| s[s4].frames[1]) > n4 + 3, "Dave stopped receiving");

    // Disconnect Alice: her screen publication goes and takes Dave's subscription with it.
    router.disconnect("s1", "alice").unwrap();
    let e = events.recv_timeout(Duration::from_secs(5)).expect("stream-ended event");
    assert_eq!(e.target, Target::Subscriber { subscription_id: "dave-screen".into() });
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions, stats.connections.len()), (0, 0, 0));
    assert_eq!(stats.demux_sizes, (0, 0, 0), "demux maps cleaned");
    assert!(matches!(router.disconnect("s1", "alice"), Err(RouterError::UnknownConnection { .. })));
    // Totals keep what closed connections counted.
    assert!(stats.totals.frames_forwarded > 0 && stats.totals.packets_in > 0);
    assert!(events.try_recv().is_err(), "no further events");
}

#[test]
fn a_peer_that_never_connects_fails_and_is_removed() {
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.connect_timeout = Duration::from_secs(1);
    // No sink at start: the host installs one later, as the server's `MediaRouter::start` does.
    let router = Router::start(config).unwrap();
    let (tx, events) = std::sync::mpsc::channel();
    router
        .set_event_sink(Some(Box::new(move |e| {
            let _ = tx.send(e);
        })))
        .unwrap();
    // Offer, take the answer, never run ICE.
    let p = offer(&PeerOptions::publisher(loopback_v4()));
    router
        .publish(PublishSpec {
            session_id: "s".into(),
            connection_id: "c".into(),
            stream_id: "x".into(),
            sdp_offer: p.offer.clone(),
            video_size: None,
        })
        .unwrap();
    let e = events.recv_timeout(Duration::from_secs(6)).expect("failure event");
    assert_eq!(e.target, Target::Publisher { stream_id: "x".into() });
    assert!(matches!(e.kind, RouterEventKind::Failed(_)), "{e:?}");
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.connections.len(), stats.demux_sizes), (0, 0, (0, 0, 0)));
}

#[test]
fn bad_input_gets_precise_errors() {
    let (router, _events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let ip = loopback_v4();
    let spec = |sdp: String| PublishSpec {
        session_id: "s".into(),
        connection_id: "c".into(),
        stream_id: "cam".into(),
        sdp_offer: sdp,
        video_size: None,
    };
    assert!(matches!(router.publish(spec("not sdp".into())), Err(RouterError::BadSdp(_))));
    // A "publisher" that only wants to receive has nothing to publish.
    let recv_only = offer(&PeerOptions::subscriber(ip)).offer;
    assert!(matches!(router.publish(spec(recv_only)), Err(RouterError::NoUsableMedia(_))));
    router.publish(spec(offer(&PeerOptions::publisher(ip)).offer)).unwrap();
    assert!(matches!(
        router.publish(spec(offer(&PeerOptions::publisher(ip)).offer)),
        Err(RouterError::StreamExists { .. })
    ));
    // A "subscriber" that only sends cannot receive the stream.
    let sub = |sdp: String, id: &str| SubscribeSpec {
        session_id: "s".into(),
        connection_id: "c2".into(),
        subscription_id: id.into(),
        stream_id: "cam".into(),
        sdp_offer: sdp,
        wish: Default::default(),
    };
    let send_only = offer(&PeerOptions::publisher(ip)).offer;
    assert!(matches!(router.subscribe(sub(send_only, "a")), Err(RouterError::NoUsableMedia(_))));
    assert!(matches!(router.subscribe(sub("v=0".into(), "b")), Err(RouterError::BadSdp(_))));
    router.subscribe(sub(offer(&PeerOptions::subscriber(ip)).offer, "ok")).unwrap();
    assert!(matches!(
        router.subscribe(sub(offer(&PeerOptions::subscriber(ip)).offer, "ok")),
        Err(RouterError::SubscriptionExists { .. })
    ));
    // Candidates.
    let target = Target::Publisher { stream_id: "cam".into() };
    assert!(matches!(
        router.add_remote_candidate("s", target.clone(), "candidate:garbage"),
        Err(RouterError::BadCandidate(_))
    ));
    router
        .add_remote_candidate("s", target.clone(), "a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host")
        .unwrap();
    router.add_remote_candidate("s", target, "").unwrap();
    assert!(matches!(
        router.add_remote_candidate("s", Target::Subscriber { subscription_id: "nope".into() }, ""),
        Err(RouterError::UnknownSubscription { .. })
    ));
    assert!(matches!(
        router.add_remote_candidate("other", Target::Publisher { stream_id: "cam".into() }, ""),
        Err(RouterError::UnknownStream { .. })
    ));
    // The failed attempts left nothing behind.
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions, stats.connections.len()), (1, 1, 2));
    assert_eq!(stats.demux_sizes.1, 2);
}

#[test]
fn configuration_errors() {
    let start = |bind: &[&str], adv: Option<&[&str]>| {
        let mut c = RouterConfig::new(bind.iter().map(|a| a.parse().unwrap()).collect());
        c.advertised = adv.map(|a| a.iter().map(|a| a.parse().unwrap()).collect());
        Router::start(c)
    };
    assert!(matches!(start(&[], None), Err(RouterError::Config(_))));
    assert!(matches!(start(&["127.0.0.1:0", "127.0.0.2:0"], None), Err(RouterError::Config(_))));
    assert!(
        matches!(start(&["0.0.0.0:0"], None), Err(RouterError::Config(_))),
        "unspecified needs an advertised address"
    );
    assert!(matches!(start(&["127.0.0.1:0"], Some(&["[::1]:0"])), Err(RouterError::Config(_))));
    // Binding an address this host does not have.
    assert!(matches!(start(&["192.0.2.1:0"], None), Err(RouterError::Bind { .. })));
    // Wildcard bind with an advertised address (port 0 = the bound port) works.
    let r = start(&["0.0.0.0:0"], Some(&["127.0.0.1:0"])).unwrap();
    assert_ne!(r.local_addrs()[0].port(), 0);
    r.shutdown();
    assert!(matches!(r.stats(), Err(RouterError::Stopped)));
}

#[test]
fn a_client_that_vanishes_is_reported_failed_and_removed() {
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let clients = Clients::new(false);
    let ip = loopback_v4();
    let publisher = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "alice");
    let sub = subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", "bob-cam", "bob");
    clients.wait_until("connected", Duration::from_secs(15), |s| s[publisher].connected && s[sub].connected);
    let _ = events_until(&events, 2, Duration::from_secs(10));
    // Bob's client goes away without a word: no more consent checks. ICE-lite gives up on a
    // pair after 15 s without a binding request.
    clients.remove(sub);
    let e = events.recv_timeout(Duration::from_secs(40)).expect("a failure event");
    assert_eq!(e.target, Target::Subscriber { subscription_id: "bob-cam".into() });
    assert!(matches!(e.kind, RouterEventKind::Failed(_)), "{e:?}");
    let stats = router.stats().unwrap();
    assert_eq!((stats.published_streams, stats.subscriptions, stats.connections.len()), (1, 0, 1));
    assert_eq!(stats.demux_sizes, (1, 1, 1));
}

#[test]
fn a_panic_inside_the_router_costs_one_connection_not_the_router() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let _serial = media_test_lock();
    let (router, events) = start_router(vec!["127.0.0.1:0".parse().unwrap()]);
    let clients = std::sync::Arc::new(Clients::new(false));
    let ip = loopback_v4();
    let publisher = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "alice");
    let subs: Vec<PeerId> = (0..2)
        .map(|i| {
            subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", &format!("sub{i}"), &format!("c{i}"))
        })
        .collect();
    clients.wait_until("connected", Duration::from_secs(15), |s| s.iter().all(|p| p.connected));
    let _ = events_until(&events, 3, Duration::from_secs(10));
    let _media = keep_sending(clients.clone(), publisher);
    clients.wait_until("media", Duration::from_secs(5), |s| subs.iter().all(|&i| s[i].frames[1] > 3));

    // The tap runs inside the router's drain of a connection: a panic there stands for a bug
    // in the media stack hit by one peer's traffic. It fires once.
    let armed = std::sync::Arc::new(AtomicBool::new(true));
    let a = armed.clone();
    router
        .set_packet_tap(Some(Box::new(move |dir, _| {
            if dir == TapDirection::Sent && a.swap(false, Ordering::SeqCst) {
                panic!("injected fault");
            }
        })))
        .unwrap();
    let e = events.recv_timeout(Duration::from_secs(5)).expect("the failed connection is reported");
    assert!(matches!(&e.kind, RouterEventKind::Failed(m) if m.contains("injected fault")), "{e:?}");
    assert!(!armed.load(Ordering::SeqCst));
    std::thread::sleep(Duration::from_millis(200));

    // The router is still serving, and its maps agree with what is left.
    let stats = router.stats().expect("the router survived");
    let left = stats.connections.len();
    assert_eq!(stats.demux_sizes.1, left, "{stats:?}");
    assert_eq!(stats.demux_sizes.2, left, "{stats:?}");
    match e.target {
        Target::Publisher { .. } => {
            // The publisher went: its subscribers were closed with it.
            assert_eq!((left, stats.published_streams, stats.subscriptions), (0, 0, 0));
            let closed = events_until(&events, 2, Duration::from_secs(5));
            assert!(closed.iter().all(|e| e.kind == RouterEventKind::Closed(CloseReason::StreamEnded)));
        }
        Target::Subscriber { subscription_id } => {
            assert_eq!((left, stats.published_streams, stats.subscriptions), (2, 1, 1));
            let other = if subscription_id == "sub0" { subs[1] } else { subs[0] };
            let n = clients.with(|s| s[other].frames[1]);
            // Polled rather than slept: on a loaded machine 400 ms may hold fewer than 4 frames.
            clients.wait_until("the other subscriber still receives", Duration::from_secs(3), |s| {
                s[other].frames[1] > n + 3
            });
        }
    }
    // New work is accepted.
    let p = offer(&PeerOptions::publisher(ip));
    router
        .publish(PublishSpec {
            session_id: "s1".into(),
            connection_id: "late".into(),
            stream_id: "cam2".into(),
            sdp_offer: p.offer.clone(),
            video_size: None,
        })
        .expect("the router still answers offers");
}
