//! Router fan-out benchmark: one publisher (VP8-sized video at ~2.5 Mbps / 30 fps and
//! Opus-sized audio at 50 frames/s) to N subscribers, N stepped up until a subscriber loses
//! 1% of its frames or the step list ends. All peers are real str0m peer connections over
//! loopback UDP with DTLS-SRTP, in this process; the router runs on its own thread.
//!
//!     cargo bench -p umbra-router --bench fanout
//!
//! `-- --quick` runs N = 10 and 50 only; `-- --no-bwe` turns bandwidth estimation (and so
//! str0m's pacer) off, to show what pacing adds to end-to-end latency; `-- --workers W` sets
//! the router's media workers (default: one per core); `-- --sessions S` splits the N
//! subscribers over S sessions, each with its own publisher, so that with S ≥ 2 every worker
//! carries media (the per-worker CPU line shows it); `-- --steps 50,75` picks the N steps;
//! `-- --pin-router C` runs the router's workers on CPU C only and everything else (the test
//! clients) on the other CPUs, so the router-added latency is the router's own and not time
//! spent waiting for a core the clients hold (use it with `--workers 1`); `-- --inline-send`
//! has each worker send on itself instead of through its send thread.
//!
//! The publisher paces what it sends at 2.5x its media rate, as libwebrtc's pacer and the
//! native SDK's do, so a key frame reaches the router spread over tens of milliseconds the way
//! a real publisher's does; `-- --burst` sends each frame in one burst instead (the worst
//! case for the router-added latency: a key frame's ~35 packets arrive together and each is
//! copied to every subscriber before the next).
//!
//! Reported per step: packets the router sent per second and per second of router-thread CPU
//! ("per core"), router CPU per subscriber track, RSS per subscriber (router + test client
//! together, so an upper bound of the router's share), the router-added latency (receive of a
//! frame's last packet → frame written to every subscriber) p50/p99, end-to-end latency
//! (publisher write → subscriber frame, through both str0m stacks and the pacer), and loss.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use str0m::media::MediaKind;
use umbra_loadgen::pacer::LIBWEBRTC_PACE_MULTIPLIER as PACE_MULTIPLIER;
use umbra_router::*;

const VIDEO_FPS: f64 = 30.0;
const AUDIO_FPS: f64 = 50.0;
const VIDEO_BPS: f64 = 2_500_000.0;
const AUDIO_BYTES: usize = 100;
/// Published anchors, subscriber tracks ("consumers") per core.
const MEDIASOUP_PER_CORE: f64 = 500.0;
const LIVEKIT_PER_CORE: f64 = 190.0;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).unwrap_or(0);
    pages * 4096
}

struct Step {
    n: usize,
    loss_worst: f64,
    loss_mean: f64,
    pps: f64,
    pps_per_core: f64,
    cpu_fraction: f64,
    cpu_per_track_pct: f64,
    tracks_per_core: f64,
    rss_per_sub_kib: f64,
    p50: Duration,
    p99: Duration,
    e2e_p50: Duration,
    e2e_p99: Duration,
    send_errors: u64,
}

/// Restricts the calling thread (and the threads it starts from now on) to the CPUs `keep`
/// accepts among the first `cpus`.
fn pin_current_thread(cpus: usize, keep: impl Fn(usize) -> bool) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it for indices
    // below CPU_SETSIZE, and sched_setaffinity reads exactly `size_of::<cpu_set_t>()` bytes.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for c in (0..cpus.min(libc::CPU_SETSIZE as usize)).filter(|&c| keep(c)) {
            libc::CPU_SET(c, &mut set);
        }
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "sched_setaffinity: {}", std::io::Error::last_os_error());
    }
}

fn percentile(v: &mut [u32], p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort_unstable();
    let i = (((p / 100.0) * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    Duration::from_micros(v[i] as u64)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let custom: Option<Vec<usize>> = {
        let args: Vec<String> = std::env::args().collect();
        args.iter()
            .position(|a| a == "--steps")
            .and_then(|i| args.get(i + 1))
            .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
    };
    let steps: &[usize] = match &custom {
        Some(c) => c,
        None if quick => &[10, 50],
        None => &[10, 25, 50, 75, 100, 150, 200, 250],
    };
    let window = Duration::from_secs(if quick { 3 } else { 5 });

    let no_bwe = std::env::args().any(|a| a == "--no-bwe");
    let burst = std::env::args().any(|a| a == "--burst");
    let inline_send = std::env::args().any(|a| a == "--inline-send");
    let arg = |name: &str| -> Option<usize> {
        let args: Vec<String> = std::env::args().collect();
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok())
    };
    let sessions = arg("--sessions").unwrap_or(1).max(1);
    let mut config = RouterConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    if let Some(w) = arg("--workers") {
        config.media_workers = w;
    }
    let workers = config.media_workers;
    config.send_thread = !inline_send;
    if no_bwe {
        // For comparison only: without BWE str0m sends without pacing.
        config.bwe_initial_bps = None;
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let pin = arg("--pin-router").filter(|&c| c < cpus && cpus > 1);
    if let Some(core) = pin {
        // The router's worker threads inherit this; the clients, started after, get the rest.
        pin_current_thread(cpus, |c| c == core);
    }
    let router = Router::start(config).expect("router");
    if let Some(core) = pin {
        pin_current_thread(cpus, |c| c != core);
    }
    let ip = loopback_v4();
    let pub_clients = Arc::new(Clients::new(false));
    // Subscribers spread over two client threads so the client side is not the bottleneck
    // before the router is.
    let sub_clients = [Clients::new(false), Clients::new(false)];

    let session_name = |k: usize| format!("bench{k}");
    let mut publishers = Vec::new();
    for k in 0..sessions {
        let p = offer(&PeerOptions::publisher(ip));
        let answer = router
            .publish(PublishSpec {
                session_id: session_name(k),
                connection_id: "pub".into(),
                stream_id: "cam".into(),
                sdp_offer: p.offer.clone(),
                video_size: None,
            })
            .expect("publish");
        let peer = p.accept(&answer);
        let peer = if burst { peer } else { peer.paced((VIDEO_BPS * PACE_MULTIPLIER) as u64) };
        let publisher = pub_clients.add(peer);
        pub_clients.wait_until("publisher connected", Duration::from_secs(20), |s| s[publisher].connected);
        publishers.push(publisher);
    }
    let placed: Vec<Option<usize>> = (0..sessions).map(|k| router.worker_of(&session_name(k))).collect();

    // The publisher: paced in real time on its own thread; counts what it sent.
    let stop = Arc::new(AtomicBool::new(false));
    let sent_video = Arc::new(AtomicU64::new(0));
    let sent_audio = Arc::new(AtomicU64::new(0));
    let sender = {
        let (stop, sv, sa, pc) = (stop.clone(), sent_video.clone(), sent_audio.clone(), pub_clients.clone());
        let publishers = publishers.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut rng = fastrand::Rng::with_seed(7);
            let mean_frame = VIDEO_BPS / 8.0 / VIDEO_FPS;
            let (mut v, mut a) = (0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                let t = start.elapsed().as_secs_f64();
                while (v as f64) < t * VIDEO_FPS {
                    // A keyframe every 2 s at 4x the size; delta frames ±20% around the mean
                    // that keeps the whole at ~2.5 Mbps.
                    let len = if v % 60 == 0 {
                        (mean_frame * 4.0) as usize
                    } else {
                        (mean_frame * (56.0 / 59.0) * (0.8 + 0.4 * rng.f64())) as usize
                    };
                    for &publisher in &publishers {
                        pc.write(publisher, MediaKind::Video, timed_frame(v as u32, len));
                    }
                    v += 1;
                    sv.store(v, Ordering::Relaxed);
                }
                while (a as f64) < t * AUDIO_FPS {
                    for &publisher in &publishers {
                        pc.write(publisher, MediaKind::Audio, frame(a as u32, MediaKind::Audio, AUDIO_BYTES));
                    }
                    a += 1;
                    sa.store(a, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };

    println!(
        "umbra-router fan-out benchmark: {sessions} publisher(s) (VP8-sized {:.1} Mbps @ {VIDEO_FPS} fps + Opus-sized {AUDIO_FPS}/s) → N subscribers",
        VIDEO_BPS / 1e6
    );
    println!(
        "machine: {cpus} CPUs online; all peers and the router in this process{}; window {:?} per step; publisher {}; BWE/pacer {}; {workers} media worker(s), {}; {sessions} session(s) placed on workers {placed:?}\n",
        match pin {
            Some(core) => format!(" (router workers on CPU {core} alone, the rest on the others)"),
            None => String::new(),
        },
        window,
        if burst {
            "sends each frame in one burst".to_string()
        } else {
            format!("paced at {PACE_MULTIPLIER}x its rate")
        },
        if no_bwe { "off" } else { "on" },
        if inline_send { "each sending on itself" } else { "each with a send thread" }
    );

    let mut subs: Vec<(usize, PeerId)> = Vec::new();
    let mut results = Vec::new();
    for &n in steps {
        let rss_before = rss_bytes();
        let have = subs.len();
        for i in have..n {
            let p = offer(&PeerOptions::subscriber(ip));
            let answer = router
                .subscribe(SubscribeSpec {
                    session_id: session_name(i % sessions),
                    connection_id: format!("c{i}"),
                    subscription_id: format!("s{i}"),
                    stream_id: "cam".into(),
                    sdp_offer: p.offer.clone(),
                    wish: Default::default(),
                })
                .expect("subscribe");
            let host = i % 2;
            subs.push((host, sub_clients[host].add(p.accept(&answer))));
        }
        for c in &sub_clients {
            c.wait_until("subscribers connected", Duration::from_secs(60), |s| s.iter().all(|p| p.connected));
        }
        // Warm-up: BWE ramps, keyframe for the newcomers.
        std::thread::sleep(Duration::from_millis(1500));
        let rss_after = rss_bytes();
        for c in &sub_clients {
            c.with(|s| s.iter_mut().for_each(|p| p.e2e_us.clear()));
        }

        let s0 = router.stats().unwrap();
        let (v0, a0) = (sent_video.load(Ordering::Relaxed), sent_audio.load(Ordering::Relaxed));
        std::thread::sleep(window);
        let s1 = router.stats().unwrap();
        let (v1, a1) = (sent_video.load(Ordering::Relaxed), sent_audio.load(Ordering::Relaxed));
        // Let the frames sent just before the window closed arrive (or be retransmitted), then
        // count, by sequence number, which of the window's frames each subscriber got.
        std::thread::sleep(Duration::from_millis(700));
        let sent = ((v1 - v0) + (a1 - a0)) as f64;
        let per_worker: Vec<String> = s1
            .workers
            .iter()
            .zip(&s0.workers)
            .map(|(b, a)| {
                let cpu = b.thread_cpu.saturating_sub(a.thread_cpu).as_secs_f64();
                let send_cpu = b.send_thread_cpu.saturating_sub(a.send_thread_cpu).as_secs_f64();
                let pk = b.packets_out.saturating_sub(a.packets_out);
                let calls = b.sent.calls.saturating_sub(a.sent.calls).max(1) as f64;
                let msgs = b.sent.messages.saturating_sub(a.sent.messages).max(1) as f64;
                let dgrams = b.sent.datagrams.saturating_sub(a.sent.datagrams) as f64;
                format!(
                    "w{}: {:.1}% CPU (send thread {:.1}%), {} pkt/s, {} conns, {:.1} datagrams per sendmmsg, {:.2} per message (GSO)",
                    b.index,
                    100.0 * cpu / window.as_secs_f64(),
                    100.0 * send_cpu / window.as_secs_f64(),
                    (pk as f64 / window.as_secs_f64()) as u64,
                    b.connections,
                    dgrams / calls,
                    dgrams / msgs
                )
            })
            .collect();
        let losses: Vec<f64> = subs
            .iter()
            .map(|(h, id)| {
                let got = sub_clients[*h]
                    .with(|s| s[*id].seen_in(MediaKind::Video, v0..v1) + s[*id].seen_in(MediaKind::Audio, a0..a1));
                (1.0 - got as f64 / sent).max(0.0)
            })
            .collect();
        let loss_worst = losses.iter().cloned().fold(0.0, f64::max);
        let loss_mean = losses.iter().sum::<f64>() / losses.len() as f64;

        let secs = s1.router_thread_cpu.saturating_sub(s0.router_thread_cpu).as_secs_f64();
        let cpu_fraction = secs / window.as_secs_f64();
        let pkts = (s1.totals.packets_out - s0.totals.packets_out) as f64;
        let pps = pkts / window.as_secs_f64();
        let tracks = (2 * n) as f64;
        let lat = s1.forward_latency.since(&s0.forward_latency);
        let mut e2e: Vec<u32> = Vec::new();
        for c in &sub_clients {
            c.with(|s| s.iter().for_each(|p| e2e.extend_from_slice(&p.e2e_us)));
        }
        let step = Step {
            n,
            loss_worst,
            loss_mean,
            pps,
            pps_per_core: if secs > 0.0 { pkts / secs } else { 0.0 },
            cpu_fraction,
            cpu_per_track_pct: 100.0 * cpu_fraction / tracks,
            tracks_per_core: if cpu_fraction > 0.0 { tracks / cpu_fraction } else { 0.0 },
            rss_per_sub_kib: rss_after.saturating_sub(rss_before) as f64 / 1024.0 / (n - have) as f64,
            p50: lat.percentile(50.0),
            p99: lat.percentile(99.0),
            e2e_p50: percentile(&mut e2e, 50.0),
            e2e_p99: percentile(&mut e2e, 99.0),
            send_errors: s1.totals.send_errors - s0.totals.send_errors,
        };
        println!(
            "N={:>3}  loss worst {:>5.2}% mean {:>5.2}%  router {:>7.0} pkt/s, {:>7.0} pkt/s per core ({:.2} µs CPU/pkt), CPU {:>5.1}% ({:.3}% per track, {:>5.0} tracks/core)  RSS +{:>5.0} KiB/sub  router latency p50 {:>4} µs p99 {:>5} µs  e2e p50 {:>5.1} ms p99 {:>5.1} ms  send errors {}",
            step.n,
            100.0 * step.loss_worst,
            100.0 * step.loss_mean,
            step.pps,
            step.pps_per_core,
            if step.pps_per_core > 0.0 { 1e6 / step.pps_per_core } else { 0.0 },
            100.0 * step.cpu_fraction,
            step.cpu_per_track_pct,
            step.tracks_per_core,
            step.rss_per_sub_kib,
            step.p50.as_micros(),
            step.p99.as_micros(),
            step.e2e_p50.as_secs_f64() * 1e3,
            step.e2e_p99.as_secs_f64() * 1e3,
            step.send_errors
        );
        let estimates: Vec<u64> = s1.connections.iter().filter_map(|c| c.bwe_estimate_bps).collect();
        let mean_estimate = estimates.iter().sum::<u64>() as f64 / estimates.len().max(1) as f64;
        println!(
            "       per worker: {}; overload drops {} (episodes {}), loop lag p99 {} µs, late datagrams {}, mean BWE estimate {:.2} Mbps",
            per_worker.join("; "),
            s1.totals.frames_dropped_overload - s0.totals.frames_dropped_overload,
            s1.totals.overload_episodes - s0.totals.overload_episodes,
            s1.loop_lag.since(&s0.loop_lag).percentile(99.0).as_micros(),
            s1.late_datagrams - s0.late_datagrams,
            mean_estimate / 1e6
        );
        let over = step.loss_worst >= 0.01;
        results.push(step);
        if over {
            break;
        }
    }
    // The router's own memory per subscriber: what unsubscribing everyone gives back (the test
    // clients stay alive, so their share is not in it). glibc keeps freed memory unless asked
    // to return it, hence malloc_trim before each reading.
    let n = subs.len();
    // SAFETY: malloc_trim only releases free heap memory.
    unsafe { libc::malloc_trim(0) };
    let rss_full = rss_bytes();
    for i in 0..n {
        router.unsubscribe(&session_name(i % sessions), &format!("s{i}")).expect("unsubscribe");
    }
    std::thread::sleep(Duration::from_millis(300));
    unsafe { libc::malloc_trim(0) };
    let rss_empty = rss_bytes();
    let router_kib_per_sub = rss_full.saturating_sub(rss_empty) as f64 / 1024.0 / n as f64;
    let left = router.stats().unwrap();
    println!(
        "\nrouter memory per subscriber: {router_kib_per_sub:.0} KiB (RSS returned by unsubscribing all {n}; {} connections and demux sizes {:?} left)",
        left.connections.len(),
        left.demux_sizes
    );
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();

    let ok: Vec<&Step> = results.iter().filter(|s| s.loss_worst < 0.01).collect();
    println!();
    match ok.last() {
        Some(best) => {
            println!(
                "largest N with < 1% loss: {} (steps tried: {:?})",
                best.n,
                results.iter().map(|s| s.n).collect::<Vec<_>>()
            );
            let at50 = results.iter().find(|s| s.n == 50);
            if let Some(s) = at50 {
                println!(
                    "at N=50: loss {:.2}%, router-added latency p50 {} µs / p99 {} µs → target (<1% loss, p99 < 1 ms): {}",
                    100.0 * s.loss_worst,
                    s.p50.as_micros(),
                    s.p99.as_micros(),
                    if s.loss_worst < 0.01 && s.p99 < Duration::from_millis(1) { "MET" } else { "NOT MET" }
                );
            }
            // Efficiency from the largest loaded step (fixed costs amortised best there).
            println!(
                "subscriber tracks per core at N={}: {:.0} → {:.2}x mediasoup's ~{MEDIASOUP_PER_CORE:.0}/core, {:.2}x LiveKit's ~{LIVEKIT_PER_CORE:.0}/core",
                best.n,
                best.tracks_per_core,
                best.tracks_per_core / MEDIASOUP_PER_CORE,
                best.tracks_per_core / LIVEKIT_PER_CORE
            );
            println!("packets forwarded per second per core at N={}: {:.0}", best.n, best.pps_per_core);
        }
        None => println!("no step stayed under 1% loss"),
    }
    router.shutdown();
}
