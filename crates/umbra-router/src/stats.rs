//! Counters and the frame-forwarding latency histogram. The router thread owns them and hands
//! out copies on request, so the hot path never takes a lock or an atomic.

use std::time::Duration;

pub use crate::batch::SendCounts;

/// Traffic counters of one peer connection, or of the whole router.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// UDP datagrams handed to the connection's ICE/DTLS/SRTP stack / bytes in them.
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Datagrams addressed to this connection (a STUN message naming its ufrag, or anything
    /// from an address it verified) that it did not accept: checks whose MESSAGE-INTEGRITY
    /// does not verify with its password (forged with a sniffed ufrag), or traffic from an
    /// address without a succeeded candidate pair. Dropped unseen by its stack.
    pub packets_refused: u64,
    /// UDP datagrams sent / bytes in them.
    pub packets_out: u64,
    pub bytes_out: u64,
    /// Frames received from publishers (counted by RTP timestamp: the router forwards
    /// packets and never assembles frames).
    pub frames_in: u64,
    /// Frames whose packets were written to subscribers (one per frame per subscriber track,
    /// counted at the frame's first packet).
    pub frames_forwarded: u64,
    /// Frames not forwarded to a subscriber because it did not negotiate the codec, or its
    /// connection was not up yet.
    pub frames_dropped: u64,
    /// Keyframe requests (PLI/FIR) from subscribers relayed to a publisher.
    pub keyframe_requests_relayed: u64,
    /// Keyframe requests the router itself sent to a publisher (new subscriber, broken frame).
    pub keyframe_requests_originated: u64,
    /// Keyframe requests folded into one sent shortly before.
    pub keyframe_requests_coalesced: u64,
    /// Datagrams the kernel refused to send (full socket buffer) — lost on the way out.
    pub send_errors: u64,
    /// Frames not sent to a subscriber because they would have reached it too late: its send
    /// backlog was over `RouterConfig::max_queue_delay`/2, `max_queue_bytes` or
    /// `max_queue_packets`, the frame itself arrived that late (the router loop was behind),
    /// or the track was waiting for the keyframe that follows such a drop.
    pub frames_dropped_overload: u64,
    /// Times a subscriber fell behind (the first overload drop after a frame went out).
    pub overload_episodes: u64,
    /// Simulcast layer switches made for this subscriber.
    pub layer_switches: u64,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_refused += o.packets_refused;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.frames_in += o.frames_in;
        self.frames_forwarded += o.frames_forwarded;
        self.frames_dropped += o.frames_dropped;
        self.keyframe_requests_relayed += o.keyframe_requests_relayed;
        self.keyframe_requests_originated += o.keyframe_requests_originated;
        self.keyframe_requests_coalesced += o.keyframe_requests_coalesced;
        self.send_errors += o.send_errors;
        self.frames_dropped_overload += o.frames_dropped_overload;
        self.overload_episodes += o.overload_episodes;
        self.layer_switches += o.layer_switches;
    }
}

/// What a peer connection is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionRole {
    Publisher { stream_id: String },
    Subscriber { subscription_id: String, stream_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionStats {
    pub session_id: String,
    pub connection_id: String,
    pub role: ConnectionRole,
    /// ICE and DTLS are up.
    pub connected: bool,
    pub counters: Counters,
    /// Latest send-side bandwidth estimate (TWCC), bits per second; subscribers only, and
    /// only those whose publisher has layers to choose among unless
    /// `RouterConfig::bwe_every_subscription` is set.
    pub bwe_estimate_bps: Option<u64>,
    /// Media and retransmission bytes waiting in this connection's send queues (str0m's
    /// pacer queues) as last seen: the router-side memory a slow subscriber costs beyond its
    /// fixed state and its RTX history.
    pub queued_bytes: usize,
    /// The most `queued_bytes` has been when a frame was forwarded to it.
    pub queued_bytes_peak: usize,
    /// Subscribers: the simulcast layer (rid) its video carries, as last reported in
    /// `LayerChanged`.
    pub video_layer: Option<String>,
}

#[derive(Debug, Clone)]
pub struct RouterStats {
    /// Sum over live connections plus everything counted on connections already closed, and
    /// datagrams that reached no connection (in `unrouted_*`).
    pub totals: Counters,
    pub connections: Vec<ConnectionStats>,
    pub published_streams: usize,
    pub subscriptions: usize,
    /// Datagrams from addresses no connection verified that were not a STUN message naming a
    /// known ufrag (or did not parse).
    pub unrouted_packets: u64,
    /// Kernel receive of a publisher's RTP packet (its SO_TIMESTAMPNS stamp, so the time it
    /// waited in the socket counts) → the packet written to every subscriber and what str0m
    /// releases at once handed to the kernel in one batch (paced packets leave later).
    pub forward_latency: LatencyHistogram,
    /// CPU time (user + system) the router's worker threads and their send threads have used,
    /// together.
    pub router_thread_cpu: Duration,
    /// Kernel arrival of a datagram → the router loop handling it: how far the loop is
    /// behind its sockets (the time media waits in the socket's receive buffer).
    pub loop_lag: LatencyHistogram,
    /// Datagrams handled more than `LOOP_LAG_WARN` (50 ms) after they arrived.
    pub late_datagrams: u64,
    /// Demux map sizes (verified remote addresses, ufrags, connections), to show teardown
    /// cleans them and forged traffic does not grow them.
    pub demux_sizes: (usize, usize, usize),
    /// Each media worker's share (the fields above are sums over workers).
    pub workers: Vec<WorkerStats>,
}

/// One media worker's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerStats {
    pub index: usize,
    /// Its sockets.
    pub local_addrs: Vec<std::net::SocketAddr>,
    /// Peer connections it holds.
    pub connections: usize,
    /// CPU time (user + system) of its thread and its send thread.
    pub thread_cpu: Duration,
    /// The part of `thread_cpu` its send thread used (zero without one: `RouterConfig::send_thread`).
    pub send_thread_cpu: Duration,
    pub packets_in: u64,
    pub packets_out: u64,
    pub frames_forwarded: u64,
    /// What it handed to the kernel: system calls, messages (a UDP GSO message carries several
    /// datagrams) and datagrams.
    pub sent: SendCounts,
}

impl RouterStats {
    /// Sum the stats of several workers (each with its own entry in `workers`).
    pub(crate) fn merge(parts: Vec<RouterStats>) -> RouterStats {
        let mut it = parts.into_iter();
        let Some(mut all) = it.next() else {
            return RouterStats {
                totals: Counters::default(),
                connections: Vec::new(),
                published_streams: 0,
                subscriptions: 0,
                unrouted_packets: 0,
                forward_latency: LatencyHistogram::default(),
                router_thread_cpu: Duration::ZERO,
                loop_lag: LatencyHistogram::default(),
                late_datagrams: 0,
                demux_sizes: (0, 0, 0),
                workers: Vec::new(),
            };
        };
        for p in it {
            all.totals.add(&p.totals);
            all.connections.extend(p.connections);
            all.published_streams += p.published_streams;
            all.subscriptions += p.subscriptions;
            all.unrouted_packets += p.unrouted_packets;
            all.forward_latency.merge(&p.forward_latency);
            all.router_thread_cpu += p.router_thread_cpu;
            all.loop_lag.merge(&p.loop_lag);
            all.late_datagrams += p.late_datagrams;
            all.demux_sizes.0 += p.demux_sizes.0;
            all.demux_sizes.1 += p.demux_sizes.1;
            all.demux_sizes.2 += p.demux_sizes.2;
            all.workers.extend(p.workers);
        }
        all
    }
}

/// A histogram of durations with 1 µs resolution to 4 ms and power-of-two buckets above it
/// (up to ~17 min), which is what router latencies need: fine where the target is (< 1 ms).
#[derive(Clone, PartialEq, Eq)]
pub struct LatencyHistogram {
    buckets: Vec<u64>,
    count: u64,
    sum_us: u64,
    max_us: u64,
}

const LINEAR_US: usize = 4096;
const LOG_BUCKETS: usize = 20;

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { buckets: vec![0; LINEAR_US + LOG_BUCKETS], count: 0, sum_us: 0, max_us: 0 }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count)
            .field("p50", &self.percentile(50.0))
            .field("p99", &self.percentile(99.0))
            .field("max", &self.max())
            .finish()
    }
}

impl LatencyHistogram {
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u64::MAX as u128) as u64;
        let idx = if (us as usize) < LINEAR_US {
            us as usize
        } else {
            // 4096..8191 → first log bucket, 8192..16383 → second, ...
            let log = (63 - us.leading_zeros()) as usize - 12;
            LINEAR_US + log.min(LOG_BUCKETS - 1)
        };
        self.buckets[idx] += 1;
        self.count += 1;
        self.sum_us = self.sum_us.saturating_add(us);
        self.max_us = self.max_us.max(us);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    pub fn mean(&self) -> Duration {
        Duration::from_micros(self.sum_us.checked_div(self.count).unwrap_or(0))
    }

    /// The `p`-th percentile (0 < p ≤ 100): exact to the microsecond below 4 ms, the upper edge
    /// of the power-of-two bucket above.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.count == 0 {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let upper_us = if i < LINEAR_US { i as u64 } else { 1u64 << (i - LINEAR_US + 13) };
                return Duration::from_micros(upper_us.min(self.max_us.max(1)));
            }
        }
        self.max()
    }

    /// Add everything recorded in `other` (another worker's histogram) to this one.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
        self.max_us = self.max_us.max(other.max_us);
    }

    /// What was recorded after `earlier` (a snapshot of this same histogram). The max is that
    /// of the later snapshot, an upper bound.
    pub fn since(&self, earlier: &LatencyHistogram) -> LatencyHistogram {
        let buckets = self.buckets.iter().zip(&earlier.buckets).map(|(a, b)| a.saturating_sub(*b)).collect();
        LatencyHistogram {
            buckets,
            count: self.count.saturating_sub(earlier.count),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
            max_us: self.max_us,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = LatencyHistogram::default();
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        assert_eq!(h.count(), 1000);
        assert_eq!(h.percentile(50.0), Duration::from_micros(500));
        assert_eq!(h.percentile(99.0), Duration::from_micros(990));
        assert_eq!(h.max(), Duration::from_micros(1000));
        h.record(Duration::from_millis(10));
        assert_eq!(h.percentile(100.0), Duration::from_millis(10));
        let before = h.clone();
        h.record(Duration::from_micros(3));
        let delta = h.since(&before);
        assert_eq!(delta.count(), 1);
        assert_eq!(delta.percentile(50.0), Duration::from_micros(3));
    }
}
