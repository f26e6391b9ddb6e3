//! One measurement: set up the publisher and N subscribers through the backend's signaling,
//! warm up, measure a window, let late frames arrive, report.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::frames::quantile;
use crate::janus::Janus;
use crate::media::{PublisherConfig, PublisherShared, SubscriberPool, spawn_publisher};
use crate::procstat;
use crate::umbra::Umbra;

#[derive(Debug, Clone)]
pub enum Backend {
    /// `url` is the server's HTTP address, e.g. `http://127.0.0.1:8080`.
    Umbra { url: String, api_key: String, api_secret: String },
    /// `url` is the Janus HTTP transport, e.g. `http://127.0.0.1:8088/janus`.
    Janus { url: String },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub backend: Backend,
    pub subscribers: usize,
    pub threads: usize,
    pub bind: IpAddr,
    pub warmup: Duration,
    pub duration: Duration,
    pub grace: Duration,
    pub server_pid: Option<u32>,
    pub publisher: PublisherConfig,
    pub label: Option<String>,
    /// Subscriber threads wake at most once per this (see `media::spawn_subscriber_thread`).
    pub batch: Duration,
}

impl Options {
    pub fn new(backend: Backend, subscribers: usize) -> Self {
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Self {
            backend,
            subscribers,
            threads: cores.clamp(1, 4),
            bind: IpAddr::from([127, 0, 0, 1]),
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(10),
            grace: Duration::from_secs(1),
            server_pid: None,
            publisher: PublisherConfig {
                video_bps: 2_500_000,
                fps: 30,
                audio_bytes: 100,
                keyframe_interval: 60,
                drop_every: 0,
                pace: 0.0,
            },
            label: None,
            batch: Duration::from_micros(1000),
        }
    }
}

enum Signaling {
    Umbra(Umbra),
    Janus(Janus),
}

impl Signaling {
    fn teardown(&mut self) {
        match self {
            Signaling::Umbra(u) => u.teardown(),
            Signaling::Janus(j) => j.teardown(),
        }
    }
}

fn round(x: f64, digits: i32) -> f64 {
    let m = 10f64.powi(digits);
    (x * m).round() / m
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("umbra-loadgen: {what}: not within {timeout:?}");
    done()
}

/// Runs one measurement and returns its report (one JSON object).
pub fn run(opts: &Options) -> Result<Value, String> {
    crate::frames::epoch();
    let n = opts.subscribers;
    let started = Instant::now();
    let (mut signaling, pub_peer, stream_id) = match &opts.backend {
        Backend::Umbra { url, api_key, api_secret } => {
            let mut u = Umbra::new(url, api_key, api_secret)?;
            let (peer, stream) = u.publish(opts.bind)?;
            (Signaling::Umbra(u), peer, Some(stream))
        }
        Backend::Janus { url } => {
            let mut j = Janus::new(url)?;
            let peer = j.publish(opts.bind)?;
            (Signaling::Janus(j), peer, None)
        }
    };
    let publisher = Arc::new(PublisherShared::default());
    let pub_thread = spawn_publisher(pub_peer, opts.publisher.clone(), publisher.clone());
    let result = (|| {
        if !wait_for("publisher connected", Duration::from_secs(15), || publisher.connected.load(Ordering::Relaxed)) {
            return Err("the publisher's connection did not come up".to_string());
        }
        // Let the server settle on the publisher alone, then take its memory baseline.
        std::thread::sleep(Duration::from_millis(500));
        let rss_base = opts.server_pid.and_then(procstat::rss_kib);

        let mut pool = SubscriberPool::new(opts.threads, opts.batch);
        let mut failed = Vec::new();
        let setup_start = Instant::now();
        for i in 0..n {
            let peer = match &mut signaling {
                Signaling::Umbra(u) => u.subscribe(opts.bind, stream_id.as_deref().unwrap_or_default(), i),
                Signaling::Janus(j) => j.subscribe(opts.bind),
            };
            match peer {
                Ok(p) => pool.add(p),
                Err(e) => {
                    if failed.len() < 3 {
                        eprintln!("umbra-loadgen: subscriber {i}: {e}");
                    }
                    failed.push(i);
                }
            }
        }
        let setup_secs = setup_start.elapsed().as_secs_f64();
        match &mut signaling {
            Signaling::Umbra(u) => u.start_keepalive(),
            Signaling::Janus(j) => j.start_keepalive(),
        }
        let set_up = n - failed.len();
        let shared = pool.shared.clone();
        wait_for("every subscriber receiving video", Duration::from_secs(10 + n as u64 / 10), || {
            shared.receiving.load(Ordering::Relaxed) >= set_up
        });
        std::thread::sleep(opts.warmup);

        // The window.
        let load_before = procstat::load1();
        let cpu0 = opts.server_pid.and_then(procstat::cpu);
        let sched0 = opts.server_pid.and_then(procstat::sched_us);
        let self0 = procstat::self_cpu_us();
        let threads0 = procstat::self_threads_us();
        let server_threads0 = opts.server_pid.map(procstat::pid_threads_us).unwrap_or_default();
        let overload = || match &signaling {
            Signaling::Umbra(u) => u.overload_counters(),
            _ => None,
        };
        let overload0 = overload();
        let pk0 = shared.rtp_packets.load(Ordering::Relaxed);
        let by0 = shared.rtp_bytes.load(Ordering::Relaxed);
        let pad0 = shared.padding_packets.load(Ordering::Relaxed);
        let v0 = publisher.video_seq.load(Ordering::Relaxed);
        let a0 = publisher.audio_seq.load(Ordering::Relaxed);
        let t0 = Instant::now();
        shared.recording.store(true, Ordering::Relaxed);
        std::thread::sleep(opts.duration);
        shared.recording.store(false, Ordering::Relaxed);
        let secs = t0.elapsed().as_secs_f64();
        let cpu1 = opts.server_pid.and_then(procstat::cpu);
        let sched1 = opts.server_pid.and_then(procstat::sched_us);
        let self1 = procstat::self_cpu_us();
        let threads1 = procstat::self_threads_us();
        let server_threads1 = opts.server_pid.map(procstat::pid_threads_us).unwrap_or_default();
        let pk1 = shared.rtp_packets.load(Ordering::Relaxed);
        let by1 = shared.rtp_bytes.load(Ordering::Relaxed);
        let pad1 = shared.padding_packets.load(Ordering::Relaxed);
        let v1 = publisher.video_seq.load(Ordering::Relaxed);
        let a1 = publisher.audio_seq.load(Ordering::Relaxed);
        let overload1 = overload();
        let rss_end = opts.server_pid.and_then(procstat::rss_kib);
        let load_after = procstat::load1();
        // Frames sent in the window that are late or retransmitted may still arrive.
        std::thread::sleep(opts.grace);
        let mut c = pool.collect(v0..v1, a0..a1);
        let rss_after_grace = opts.server_pid.and_then(procstat::rss_kib);

        let packets = pk1 - pk0;
        let pps = packets as f64 / secs;
        let (nv, na) = (u64::from(v1 - v0), u64::from(a1 - a0));
        let loss = |got: u64, of: u64| if of == 0 { 0.0 } else { 100.0 * (1.0 - got as f64 / of as f64) };
        let per_sub: Vec<f64> = c.received.iter().map(|(v, a)| loss(v + a, nv + na)).collect();
        let got_v: u64 = c.received.iter().map(|r| r.0).sum();
        let got_a: u64 = c.received.iter().map(|r| r.1).sum();
        let subs = c.received.len() as u64;
        let loss_mean = loss(got_v + got_a, subs * (nv + na));
        let loss_worst = per_sub.iter().cloned().fold(0.0, f64::max);
        let ms = |x: Option<u32>| x.map(|us| round(f64::from(us) / 1000.0, 2));
        let lat_v50 = ms(quantile(&mut c.video_latency_us, 0.5));
        let lat_v99 = ms(quantile(&mut c.video_latency_us, 0.99));
        let lat_vmax = ms(c.video_latency_us.iter().max().copied());
        let lat_a50 = ms(quantile(&mut c.audio_latency_us, 0.5));
        let lat_a99 = ms(quantile(&mut c.audio_latency_us, 0.99));
        let server_cpu = cpu0.zip(cpu1).map(|(a, b)| b.total_us().saturating_sub(a.total_us()) as f64);
        // The kernel's share of the server's CPU (its UDP paths, per datagram).
        let server_system_share = cpu0.zip(cpu1).and_then(|(a, b)| {
            let total = b.total_us().saturating_sub(a.total_us());
            (total > 0).then(|| round(100.0 * b.system_us.saturating_sub(a.system_us) as f64 / total as f64, 1))
        });
        let server_sched = sched0.zip(sched1).map(|(a, b)| b.saturating_sub(a) as f64);
        let per_pkt = |cpu: Option<f64>| cpu.filter(|_| packets > 0).map(|c| round(c / packets as f64, 2));
        // Subscriber tracks (audio and video each count) that one fully used core carries.
        let tracks_per_core = server_cpu.filter(|c| *c > 0.0).map(|c| round(2.0 * subs as f64 * secs * 1e6 / c, 0));
        let rss_per_sub =
            rss_base.zip(rss_end).filter(|_| subs > 0).map(|(b, e)| round((e as f64 - b as f64) / subs as f64, 1));
        // The window's overload drops as the router counts them (Janus has no such counter).
        let overload = overload0.zip(overload1);
        let overload_delta =
            |f: fn(&crate::umbra::OverloadCounters) -> u64| overload.map(|(a, b)| f(&b).saturating_sub(f(&a)));
        let backend = match opts.backend {
            Backend::Umbra { .. } => "umbra",
            Backend::Janus { .. } => "janus",
        };
        Ok(json!({
            "backend": backend,
            "label": opts.label,
            "n": n,
            "subscribers_set_up": set_up,
            "subscribers_failed": failed.len(),
            "subscribers_receiving": shared.receiving.load(Ordering::Relaxed),
            "subscribers_dead": shared.dead.load(Ordering::Relaxed),
            "setup_secs": round(setup_secs, 2),
            "window_secs": round(secs, 2),
            "video_frames_sent": nv,
            "audio_frames_sent": na,
            "drop_every": opts.publisher.drop_every,
            "keyframe_requests": publisher.keyframe_requests.load(Ordering::Relaxed),
            "forwarded_packets": packets,
            "forwarded_pps": round(pps, 0),
            "padding_pps": round((pad1 - pad0) as f64 / secs, 0),
            "forwarded_mbps": round((by1 - by0) as f64 * 8.0 / secs / 1e6, 2),
            "server_cpu_pct": server_cpu.map(|c| round(100.0 * c / (secs * 1e6), 1)),
            "cpu_us_per_pkt": per_pkt(server_cpu),
            "server_system_pct_of_cpu": server_system_share,
            "sched_cpu_pct": server_sched.map(|c| round(100.0 * c / (secs * 1e6), 1)),
            "sched_us_per_pkt": per_pkt(server_sched),
            "tracks_per_core": tracks_per_core,
            "loss_pct": round(loss_mean, 3),
            "loss_worst_pct": round(loss_worst, 3),
            "video_loss_pct": round(loss(got_v, subs * nv), 3),
            "audio_loss_pct": round(loss(got_a, subs * na), 3),
            "latency_ms_p50": lat_v50,
            "latency_ms_p99": lat_v99,
            "latency_ms_max": lat_vmax,
            "audio_latency_ms_p50": lat_a50,
            "audio_latency_ms_p99": lat_a99,
            "server_rss_base_mib": rss_base.map(|k| round(k as f64 / 1024.0, 1)),
            "server_rss_mib": rss_end.map(|k| round(k as f64 / 1024.0, 1)),
            "server_rss_after_grace_mib": rss_after_grace.map(|k| round(k as f64 / 1024.0, 1)),
            "rss_per_sub_kib": rss_per_sub,
            "client_cpu_pct": round(100.0 * (self1 - self0) as f64 / (secs * 1e6), 1),
            "client_threads": opts.threads,
            "client_batch_us": opts.batch.as_micros() as u64,
            "publisher_pace": opts.publisher.pace,
            "client_thread_cpu_pct": thread_cpu_pct(&threads0, &threads1, secs),
            "server_thread_cpu_pct": thread_cpu_pct(&server_threads0, &server_threads1, secs),
            "server_frames_dropped_overload": overload_delta(|c| c.frames_dropped),
            "server_subscribers_fell_behind": overload_delta(|c| c.fell_behind),
            "server_late_datagrams": overload_delta(|c| c.late_datagrams),
            "load1_before": load_before,
            "load1_after": load_after,
            "total_secs": round(started.elapsed().as_secs_f64(), 1),
        }))
    })();
    publisher.stop.store(true, Ordering::Relaxed);
    let _ = pub_thread.join();
    signaling.teardown();
    result
}

/// The one-line summary printed beside the JSON.
pub fn summary(r: &Value) -> String {
    let f = |k: &str| match &r[k] {
        Value::Null => "-".to_string(),
        v => v.to_string(),
    };
    format!(
        "{} N={} up={} pps={} cpu={}% us/pkt={} tracks/core={} loss={}% (worst {}%) lat p50/p99={}/{} ms rss={} MiB ({} KiB/sub) client cpu={}%",
        f("backend"),
        f("n"),
        f("subscribers_receiving"),
        f("forwarded_pps"),
        f("server_cpu_pct"),
        f("cpu_us_per_pkt"),
        f("tracks_per_core"),
        f("loss_pct"),
        f("loss_worst_pct"),
        f("latency_ms_p50"),
        f("latency_ms_p99"),
        f("server_rss_mib"),
        f("rss_per_sub_kib"),
        f("client_cpu_pct"),
    )
}

/// Per thread name, the share of one core used between two readings of `procstat`'s thread
/// times.
fn thread_cpu_pct(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    secs: f64,
) -> serde_json::Map<String, Value> {
    after
        .iter()
        .map(|(k, v)| {
            let used = v.saturating_sub(*before.get(k).unwrap_or(&0)) as f64;
            (k.clone(), json!(round(100.0 * used / (secs * 1e6), 1)))
        })
        .collect()
}
