//! 5% random loss between the clients and the router, injected by a UDP proxy the router
//! advertises: video frames still arrive complete, recovered by NACK/RTX.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::proxy::LossyProxy;
use common::*;
use str0m::media::MediaKind;
use umbra_router::*;

#[test]
fn five_percent_loss_is_recovered_by_nack_rtx() {
    let (front, proxy_addr) = LossyProxy::bind();
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    // Clients only ever learn the proxy's address.
    config.advertised = Some(vec![proxy_addr]);
    let (router, _events) = start_router_with(config);
    let proxy = LossyProxy::start(front, router.local_addrs()[0], 0.05, 0x5eed);

    let clients = Clients::new(true);
    let ip = loopback_v4();
    let publisher = publish(&router, &clients, &PeerOptions::publisher(ip), "cam", "c-pub");
    let subs: Vec<PeerId> = (0..2)
        .map(|i| subscribe(&router, &clients, &PeerOptions::subscriber(ip), "cam", &format!("s{i}"), &format!("c{i}")))
        .collect();
    // DTLS and STUN retransmit lost handshake packets on timers of up to a second or two.
    clients.wait_until("all connected through the proxy", Duration::from_secs(30), |s| s.iter().all(|p| p.connected));

    let (v, a) = send_media(&clients, publisher, 4.0, 6000);
    std::thread::sleep(Duration::from_millis(1000));
    let dropped = proxy.dropped.load(Ordering::Relaxed);
    let forwarded = proxy.forwarded.load(Ordering::Relaxed);
    let loss = dropped as f64 / (dropped + forwarded) as f64;
    assert!((0.03..0.07).contains(&loss), "the proxy dropped {dropped} of {} datagrams", dropped + forwarded);
    clients.with(|st| {
        for &s in &subs {
            // Every video frame is 5 packets over two lossy hops: without retransmission about
            // half would be incomplete.
            let gv = check_frames(&st[s], MediaKind::Video, 6000);
            assert!(gv as f64 >= 0.95 * v as f64, "subscriber {s}: {gv} of {v} video frames complete");
            // Audio (one packet per frame) is not retransmitted in WebRTC; it just loses ~10%.
            let ga = check_frames(&st[s], MediaKind::Audio, 6000);
            assert!(ga as f64 >= 0.8 * a as f64, "subscriber {s}: {ga} of {a} audio frames");
        }
    });
}
