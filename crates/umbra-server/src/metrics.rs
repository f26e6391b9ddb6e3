//! Prometheus metrics, kept as plain atomics and rendered in the text exposition format; the
//! handful of series here do not justify a metrics framework.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};

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

    pub fn render(&self, stored_sessions: Option<u64>) -> String {
        let mut out = String::with_capacity(2048);
        let mut gauge = |name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
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
        let _ = writeln!(
            out,
            "# HELP umbra_http_requests_total HTTP requests by route and status.\n# TYPE umbra_http_requests_total counter"
        );
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        for ((route, status), n) in m.iter() {
            let route = route.replace('\\', "\\\\").replace('"', "\\\"");
            let _ = writeln!(out, "umbra_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}");
        }
        out
    }
}
