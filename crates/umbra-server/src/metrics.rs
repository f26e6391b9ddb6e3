//! Prometheus metrics, kept as plain atomics and rendered in the text exposition format; the
//! handful of series here do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

use umbra_router::{RouterStats, WorkerStats};

#[derive(Default)]
pub struct Metrics {
    pub live_sessions: AtomicI64,
    pub connections: AtomicI64,
    pub streams: AtomicI64,
    pub sessions_created: AtomicU64,
    pub connects_refused: AtomicU64,
    pub signaling_messages: AtomicU64,
    /// Bytes queued for signaling sockets and not yet handed to them (every outbox together).
    pub signaling_outbox_bytes: AtomicI64,
    /// Signaling sockets dropped because their client did not read fast enough (a write that
    /// timed out, or a full outbox).
    pub signaling_slow_sockets_dropped: AtomicU64,
    /// Keyed by (route pattern, status) so that ids in paths do not explode cardinality.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
}

impl Metrics {
    pub fn record_request(&self, route: &str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((route.to_owned(), status)).or_default() += 1;
    }

    /// `router`: the media router's counters, when there is a router and it answered.
    pub fn render(&self, stored_sessions: Option<u64>, router: Option<&RouterStats>) -> String {
        let mut out = String::with_capacity(2048);
        let mut gauge =
            |name: &str, help: &str, kind: &str, v: String| family(&mut out, name, help, kind, [(String::new(), v)]);
        gauge(
            "umbra_sessions_live",
            "Sessions with at least one signaling connection.",
            "gauge",
            self.live_sessions.load(Relaxed).to_string(),
        );
        gauge(
            "umbra_connections",
            "Signaling connections, including ones waiting to resume.",
            "gauge",
            self.connections.load(Relaxed).to_string(),
        );
        gauge("umbra_streams", "Published streams.", "gauge", self.streams.load(Relaxed).to_string());
        gauge(
            "umbra_sessions_created_total",
            "Sessions created since start.",
            "counter",
            self.sessions_created.load(Relaxed).to_string(),
        );
        gauge(
            "umbra_signaling_connects_refused_total",
            "Signaling connects refused (bad token and similar).",
            "counter",
            self.connects_refused.load(Relaxed).to_string(),
        );
        gauge(
            "umbra_signaling_messages_total",
            "Signaling messages received from clients.",
            "counter",
            self.signaling_messages.load(Relaxed).to_string(),
        );
        gauge(
            "umbra_signaling_outbox_bytes",
            "Bytes queued for signaling sockets, not yet written.",
            "gauge",
            self.signaling_outbox_bytes.load(Relaxed).to_string(),
        );
        gauge(
            "umbra_signaling_slow_sockets_dropped_total",
            "Signaling sockets dropped because the client did not read in time (resumable).",
            "counter",
            self.signaling_slow_sockets_dropped.load(Relaxed).to_string(),
        );
        if let Some(n) = stored_sessions {
            gauge("umbra_sessions_stored", "Sessions in the store.", "gauge", n.to_string());
        }
        let requests: Vec<(String, String)> = {
            let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
            m.iter()
                .map(|((route, status), n)| {
                    let route = route.replace('\\', "\\\\").replace('"', "\\\"");
                    (format!("{{route=\"{route}\",status=\"{status}\"}}"), n.to_string())
                })
                .collect()
        };
        family(&mut out, "umbra_http_requests_total", "HTTP requests by route and status.", "counter", requests);
        if let Some(r) = router {
            render_router(&mut out, r);
        }
        out
    }
}

/// One metric family: its help, its type and every labelled value.
fn family(out: &mut String, name: &str, help: &str, kind: &str, values: impl IntoIterator<Item = (String, String)>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in values {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The media router's series. Counters are totals since the router started (closed
/// connections included), so they never go backwards.
fn render_router(out: &mut String, r: &RouterStats) {
    let t = &r.totals;
    let one = |v: u64| [(String::new(), v.to_string())];
    let workers = |f: &dyn Fn(&WorkerStats) -> String| -> Vec<(String, String)> {
        r.workers.iter().map(|w| (format!("{{worker=\"{}\"}}", w.index), f(w))).collect()
    };
    family(
        out,
        "umbra_router_worker_connections",
        "Peer connections a media worker holds.",
        "gauge",
        workers(&|w| w.connections.to_string()),
    );
    family(
        out,
        "umbra_router_worker_cpu_seconds_total",
        "CPU time of a media worker, its send thread included.",
        "counter",
        workers(&|w| format!("{:.6}", w.thread_cpu.as_secs_f64())),
    );
    family(
        out,
        "umbra_router_worker_send_thread_cpu_seconds_total",
        "The part of a media worker's CPU time its send thread used.",
        "counter",
        workers(&|w| format!("{:.6}", w.send_thread_cpu.as_secs_f64())),
    );
    family(
        out,
        "umbra_router_worker_packets_received_total",
        "UDP datagrams a media worker handed to its connections.",
        "counter",
        workers(&|w| w.packets_in.to_string()),
    );
    family(
        out,
        "umbra_router_worker_packets_sent_total",
        "UDP datagrams a media worker sent.",
        "counter",
        workers(&|w| w.packets_out.to_string()),
    );
    family(
        out,
        "umbra_router_published_streams",
        "Streams published through the router.",
        "gauge",
        one(r.published_streams as u64),
    );
    family(
        out,
        "umbra_router_subscriptions",
        "Subscriptions served by the router.",
        "gauge",
        one(r.subscriptions as u64),
    );
    family(
        out,
        "umbra_router_frames_forwarded_total",
        "Frames forwarded, one per frame per subscriber track.",
        "counter",
        one(t.frames_forwarded),
    );
    family(
        out,
        "umbra_router_frames_dropped_overload_total",
        "Frames not sent to a subscriber that fell behind (they would have arrived too late).",
        "counter",
        one(t.frames_dropped_overload),
    );
    family(
        out,
        "umbra_router_subscriber_fell_behind_total",
        "Times a subscriber fell behind (the first overload drop after a frame went out).",
        "counter",
        one(t.overload_episodes),
    );
    family(
        out,
        "umbra_router_late_datagrams_total",
        "Datagrams a media worker handled more than 50 ms after they arrived (the worker fell behind).",
        "counter",
        one(r.late_datagrams),
    );
    family(
        out,
        "umbra_router_send_errors_total",
        "Datagrams the kernel refused to send.",
        "counter",
        one(t.send_errors),
    );
    family(
        out,
        "umbra_router_packets_refused_total",
        "Datagrams addressed to a connection that it refused unseen (forged checks, unverified addresses).",
        "counter",
        one(t.packets_refused),
    );
    family(
        out,
        "umbra_router_unrouted_packets_total",
        "Datagrams that reached no connection.",
        "counter",
        one(r.unrouted_packets),
    );
    family(
        out,
        "umbra_router_keyframe_requests_total",
        "Keyframe requests sent to publishers: relayed from subscribers, or the router's own.",
        "counter",
        [
            ("{origin=\"subscriber\"}".to_owned(), t.keyframe_requests_relayed.to_string()),
            ("{origin=\"router\"}".to_owned(), t.keyframe_requests_originated.to_string()),
        ],
    );
}
