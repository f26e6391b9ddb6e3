//! Graceful overload: a subscriber is never sent media that is already too old to be useful,
//! and what a slow subscriber costs the router is bounded.
//!
//! # Where the router queued (what this module fixes)
//!
//! Read from the engine and str0m 0.25's pacer, and seen in the Janus comparison runs (frames
//! 1.5–5 s late, 2–4.6 MiB per subscriber, throughput below what the CPU allowed):
//!
//! - **str0m's per-stream send queue behind its pacer** (the cause). In frame mode
//!   `Writer::write` packetizes a whole frame into the stream's `SendQueue` (a `VecDeque`
//!   without a bound). With BWE on, the leaky-bucket pacer releases it at the subscriber's
//!   TWCC estimate. A client that is starved of CPU reads its socket late, its TWCC feedback
//!   shows growing delay, the estimate falls below the stream's bitrate, and the queue grows;
//!   the pacer only overrides the estimate once the *average* queued packet is near its
//!   `queue_limit` of **2 s**. The router could not lower the bitrate it forwards (there was
//!   no simulcast layer switching then), so pacing below the source rate only ever turned
//!   into delay and memory, and capped the packet rate ("forwarded 21–28 k of 34.5 k
//!   packets/s at 50–78 % CPU"). With simulcast, `engine::layers` now lowers a subscriber's
//!   layer or temporal cap when its estimate falls; this rule stays the last resort (one
//!   layer, the smallest layer still too much, the seconds before the estimate reacts).
//! - **The UDP receive buffer** (4 MiB). When the router thread itself is behind, datagrams
//!   wait in the kernel; nothing in user space sees it. Sockets now carry kernel receive
//!   timestamps (SO_TIMESTAMPNS), so that wait is measured (`RouterStats::loop_lag`) and a
//!   frame completed by a datagram that waited too long is treated as stale.
//! - Not queues: the engine's `work` `VecDeque` is emptied after every drain (it holds what
//!   one datagram produced), the timer heap is rebuilt when stale entries pile up, the RTX
//!   history is capped by `rtx_history_packets`, and a full socket *send* buffer makes
//!   `send_to` fail (counted in `send_errors`), it does not queue in user space.
//!
//! # The rule
//!
//! The router forwards RTP packets, but decides per frame: at a frame's first packet (a new
//! RTP timestamp on the track) and the rest of the frame follows. Before that packet is
//! written to a subscriber track, the subscriber's backlog over all its
//! tracks — str0m's last queue sample (`StreamTx::queue_info`) plus what the router wrote
//! since that sample — is checked. The frame is dropped when
//!
//! - the oldest unsent packet has waited `max_queue_delay / 2` or more, or
//! - bytes or packets queued would exceed `max_queue_bytes` / `max_queue_packets`, or
//! - the frame itself completed `max_queue_delay / 2` or more ago (the loop was behind), or
//!   would be that old once the pacer has sent what is ahead of it and itself at the
//!   subscriber's bandwidth estimate, or
//! - it is a video delta frame and the track lost a frame to this rule (it could not be
//!   decoded; only a keyframe may go next).
//!
//! On the first drop of an episode the subscriber's video streams are made *unpaced*, so the
//! backlog already in str0m leaves at once instead of at the (fallen) estimate, and the
//! publisher is asked for a keyframe (folded by `keyframe_request_interval` like every
//! other request). Pacing is restored once a frame goes out onto an empty backlog
//! [`RESTORE_PACING_AFTER`] after the last drop: pacing below the rate the publisher sends
//! cannot lower that rate (when no smaller layer or temporal cap is left), it can only delay, so a
//! subscriber whose estimate stays low spends most of its time unpaced, losing a frame and
//! asking for a keyframe every couple of seconds when pacing is tried again.
//!
//! # Invariant and bound
//!
//! - A frame is admitted only when the subscriber's oldest queued packet is younger than
//!   `max_queue_delay / 2` and the frame itself is younger than that; once an episode starts
//!   the queue is flushed unpaced. So a media packet leaves the router at most about
//!   `max_queue_delay / 2` + one pacer burst after its frame completed, plus however late the
//!   loop runs (which `loop_lag` reports).
//! - Queued bytes per subscriber ≤ `max_queue_bytes` + one frame (the admission check counts
//!   the first packet; the rest of an admitted frame follows it); queued packets likewise.
//!   A dropped frame's packets never reach str0m, and the subscriber's sequence numbers close
//!   over them (`rtp::seqmap`), so a drop costs no NACK and no retransmission. With the RTX history
//!   (`rtx_history_packets` per video stream) that bounds a subscriber's media memory.

use std::time::{Duration, Instant};

use str0m::media::MediaKind;

use crate::conn::{Conn, Role, Route};

/// A subscriber's send backlog over all its tracks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Backlog {
    pub bytes: usize,
    pub packets: usize,
    /// When the oldest unsent packet was queued.
    pub oldest: Option<Instant>,
}

impl Backlog {
    fn add(&mut self, bytes: usize, packets: usize, oldest: Option<Instant>) {
        self.bytes += bytes;
        self.packets += packets;
        self.oldest = match (self.oldest, oldest) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
}

/// What to do with one frame for one subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    /// Too late or too much queued: drop, and (video) wait for a keyframe.
    Drop,
    /// The track lost a frame earlier; this one is a delta frame and would not decode.
    AwaitKeyframe,
}

pub struct Limits {
    pub max_age: Duration,
    pub max_bytes: usize,
    pub max_packets: usize,
}

/// A subscriber stays unpaced this long after its last overload drop before pacing is given
/// another chance: a pacer held below the stream's rate would only fill up again at once.
pub const RESTORE_PACING_AFTER: Duration = Duration::from_secs(2);

/// str0m paces at its estimate times this (`PACING_FACTOR` in str0m's pacer control).
const STR0M_PACING_FACTOR: f64 = 1.1;

/// The subscriber's backlog as of now. Cheap: one map lookup per track.
pub fn backlog(sc: &mut Conn) -> Backlog {
    let mut total = Backlog::default();
    let Role::Subscriber(s) = &mut sc.role else {
        return total;
    };
    let mut api = sc.rtc.direct_api();
    for route in &mut s.routes {
        let sample = api.stream_tx_by_mid(route.sub_mid, None).and_then(|tx| {
            tx.queue_info().map(|q| (q.created_at(), q.byte_size(), q.packet_count(), q.first_unsent()))
        });
        if let Some((at, bytes, packets, first)) = sample {
            if route.unsampled.sample != Some(at) {
                // A new sample covers every write made before it; the router writes only
                // right after looking here, so none made after it is lost by this reset.
                route.unsampled = crate::conn::Unsampled { sample: Some(at), ..Default::default() };
            }
            total.add(bytes, packets, first);
        }
        total.add(route.unsampled.bytes, route.unsampled.packets, route.unsampled.first);
    }
    total
}

/// Record a packet written on a route, until str0m's next queue sample accounts for it.
pub fn note_write(route: &mut Route, len: usize, now: Instant) {
    let u = &mut route.unsampled;
    u.bytes += len;
    u.packets += 1;
    u.first.get_or_insert(now);
}

/// Decide for one frame, at its first packet (`len` bytes; `keyframe`: it starts a key
/// frame). `received` is when that packet reached the kernel; `pace_bps` the rate the
/// subscriber's video is paced at (its bandwidth estimate), `None` when it is not paced (BWE
/// off, or flushing).
#[allow(clippy::too_many_arguments)]
pub fn verdict(
    backlog: &Backlog,
    route: &Route,
    len: usize,
    keyframe: bool,
    received: Instant,
    pace_bps: Option<u64>,
    limits: &Limits,
    now: Instant,
) -> Verdict {
    let admit_age = limits.max_age / 2;
    // A paced frame leaves only once everything ahead of it has: at a low estimate that alone
    // can make it late, however young the backlog's oldest packet is.
    let pacing_wait = match pace_bps {
        Some(bps) if bps > 0 && route.kind == MediaKind::Video => {
            Duration::from_secs_f64((backlog.bytes + len) as f64 * 8.0 / (bps as f64 * STR0M_PACING_FACTOR))
        }
        _ => Duration::ZERO,
    };
    let stale_frame = now.saturating_duration_since(received) + pacing_wait >= admit_age;
    let stale_queue = backlog.oldest.is_some_and(|t| now.saturating_duration_since(t) >= admit_age);
    let too_big = backlog.bytes + len > limits.max_bytes || backlog.packets + 1 > limits.max_packets;
    if stale_frame || stale_queue || too_big {
        return Verdict::Drop;
    }
    if route.kind == MediaKind::Video && route.waiting_keyframe && !keyframe {
        return Verdict::AwaitKeyframe;
    }
    Verdict::Send
}

/// Make the subscriber's video streams unpaced (`true`: its backlog leaves at once) or paced
/// again. Audio is unpaced in str0m whatever happens.
pub fn set_flush(sc: &mut Conn, flush: bool) {
    let Role::Subscriber(s) = &sc.role else {
        return;
    };
    let mut api = sc.rtc.direct_api();
    for route in s.routes.iter().filter(|r| r.kind == MediaKind::Video) {
        if let Some(tx) = api.stream_tx_by_mid(route.sub_mid, None) {
            tx.set_unpaced(flush);
        }
    }
}
