//! What the router reports on its own initiative.

/// Which peer connection an event or a candidate is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Publisher { stream_id: String },
    Subscriber { subscription_id: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterEvent {
    pub session_id: String,
    /// The signaling connection that owns the peer connection.
    pub connection_id: String,
    pub target: Target,
    pub kind: RouterEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterEventKind {
    /// ICE and DTLS are up: media flows from now on.
    Connected,
    /// The peer connection failed (ICE never completed, consent expired, DTLS failed); the
    /// router has removed it.
    Failed(String),
    /// The router closed the peer connection for a reason other than a failure; it is gone.
    Closed(CloseReason),
    /// About a publisher (`Target::Publisher`): the simulcast layers (rids) some subscriber
    /// receives changed; the others may be paused at the publisher. Empty: none is watched.
    LayersWanted(Vec<String>),
    /// About a subscriber (`Target::Subscriber`): what its video now carries.
    LayerChanged { rid: Option<String>, temporal_layer: Option<u8>, paused: bool },
    /// About a publisher (`Target::Publisher`, `connection_id` its owner): its audio became the
    /// loudest of the session (RFC 6464 levels). The last speaker stays active through silence.
    ActiveSpeaker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The stream this subscriber received was unpublished (or its publisher went away).
    StreamEnded,
}
