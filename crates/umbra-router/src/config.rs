//! How a router is started.

use std::net::SocketAddr;
use std::time::Duration;

use crate::events::RouterEvent;

/// Called on the router thread for every [`RouterEvent`]. It must not block: hand the event to
/// a channel (a tokio `UnboundedSender::send` is fine) and return.
pub type EventSink = Box<dyn FnMut(RouterEvent) + Send>;

pub struct RouterConfig {
    /// Where to bind: at most one address per family (IPv4, IPv6). Port 0 picks a free port.
    pub bind: Vec<SocketAddr>,
    /// What goes into the host candidates of every answer. `None` advertises the bound
    /// addresses (which then must not be unspecified). A port of 0 means "the port bound for
    /// that family" — useful when binding port 0 behind a known public IP. An advertised
    /// address needs a bound socket of its family; several per family are allowed (e.g. a
    /// public and a private IP for the same socket).
    pub advertised: Option<Vec<SocketAddr>>,
    /// Send-side bandwidth estimation (TWCC) on subscriber connections: the first estimate, in
    /// bits per second. `None` turns BWE (and its pacer) off.
    pub bwe_initial_bps: Option<u64>,
    /// The rate BWE probes towards on each subscriber connection.
    pub bwe_desired_bps: u64,
    /// Keyframe requests for one publisher track closer together than this are folded into
    /// one: a keyframe is already on its way, and a burst of PLIs from many subscribers joining
    /// at once must not make the publisher send a burst of keyframes.
    pub keyframe_request_interval: Duration,
    /// Packets of retransmission (RTX) history kept per outgoing video stream. It is most of a
    /// subscriber's memory (~1.2 KB a packet); NACKs arrive within a few round trips, so the
    /// default of 600 (~2 s at 2.5 Mbps) is ample.
    pub rtx_history_packets: usize,
    /// A peer connection whose ICE+DTLS is not up this long after its answer is closed and
    /// reported as failed.
    pub connect_timeout: Duration,
    /// Where events go; `None` drops them.
    pub on_event: Option<EventSink>,
}

impl RouterConfig {
    pub fn new(bind: Vec<SocketAddr>) -> Self {
        RouterConfig {
            bind,
            advertised: None,
            bwe_initial_bps: Some(2_500_000),
            bwe_desired_bps: 10_000_000,
            keyframe_request_interval: Duration::from_millis(250),
            rtx_history_packets: 600,
            connect_timeout: Duration::from_secs(30),
            on_event: None,
        }
    }
}

impl std::fmt::Debug for RouterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterConfig")
            .field("bind", &self.bind)
            .field("advertised", &self.advertised)
            .field("bwe_initial_bps", &self.bwe_initial_bps)
            .field("bwe_desired_bps", &self.bwe_desired_bps)
            .field("keyframe_request_interval", &self.keyframe_request_interval)
            .field("rtx_history_packets", &self.rtx_history_packets)
            .field("connect_timeout", &self.connect_timeout)
            .field("on_event", &self.on_event.as_ref().map(|_| "EventSink"))
            .finish()
    }
}
