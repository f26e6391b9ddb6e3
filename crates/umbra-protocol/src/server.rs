//! What the server sends (signaling.md § Handshake, § Events, § Errors to requests).

use serde::{Deserialize, Serialize};

use crate::client::RequestId;
use crate::error::ErrorCode;
use crate::model::{
    ArchiveMode, ConnectionInfo, IceCandidate, IcePeer, MediaMode, MediaTarget, Reason, Role, StreamInfo,
    VideoDimensions, wire,
};

wire! {
/// One message as it arrives at a client: events carry `seq`, a per-connection counter from 1;
/// replies and the handshake messages carry none.
///
/// The server serializes a [`ServerMessage`] once per event and splices `"seq":n,` in front of it
/// for each connection it goes to, so fan-out never re-serializes; the result parses as this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerFrame {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional, type = "number"))]
    pub seq: Option<u64>,
    #[serde(flatten)]
    pub message: ServerMessage,
}
}

wire! {
/// Every message the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    // ---- handshake (no seq) ----
    /// The answer to a successful `connect`: who this client is and the first page of the
    /// session's state. When `complete` is false, `snapshot` pages follow before any event.
    Welcome {
        v: u32,
        session_id: String,
        connection_id: String,
        /// Lets this client resume this connection after a dropped socket; keep it in memory.
        resume_token: String,
        role: Role,
        connection_data: Option<String>,
        media_mode: MediaMode,
        archive_mode: ArchiveMode,
        e2ee: bool,
        cipher_suite: Option<u16>,
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        heartbeat_interval_ms: u64,
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        heartbeat_timeout_ms: u64,
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        resume_window_ms: u64,
        /// The other connections already in the session (this page).
        connections: Vec<ConnectionInfo>,
        /// The streams already published (this page).
        streams: Vec<StreamInfo>,
        complete: bool,
    },
    /// A further page of the session's state at the moment of joining.
    Snapshot {
        connections: Vec<ConnectionInfo>,
        streams: Vec<StreamInfo>,
        complete: bool,
    },
    /// The answer to a successful `resume`; the missed events follow, in order.
    Resumed {
        session_id: String,
        connection_id: String,
        /// The server's latest `seq` for this connection.
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        last_seq: u64,
    },

    // ---- replies (no seq) ----
    Ack {
        id: Option<RequestId>,
        #[serde(flatten)]
        body: AckBody,
    },
    /// A refused request (with its `id`), or a refused handshake (`id` null; the socket then
    /// closes with 4003).
    Error {
        id: Option<RequestId>,
        code: ErrorCode,
        message: String,
    },
    Pong {
        id: Option<RequestId>,
    },

    // ---- events (seq) ----
    ConnectionCreated {
        connection: ConnectionInfo,
    },
    ConnectionDestroyed {
        connection: ConnectionInfo,
        reason: Reason,
    },
    StreamCreated {
        stream: StreamInfo,
    },
    StreamDestroyed {
        stream: StreamInfo,
        reason: Reason,
    },
    StreamPropertyChanged {
        stream_id: String,
        #[serde(flatten)]
        change: PropertyChanged,
    },
    Signal {
        /// `null` for signals sent with the REST API.
        from: Option<String>,
        signal_type: String,
        data: String,
    },
    /// A subscriber's offer for a stream this client publishes (relayed sessions).
    SubscribeOffer {
        subscription_id: String,
        stream_id: String,
        subscriber_connection_id: String,
        sdp_offer: String,
    },
    /// The publisher's answer to this client's subscription (relayed sessions).
    Answer {
        subscription_id: String,
        stream_id: String,
        sdp_answer: String,
    },
    /// A candidate from the other end of a relayed subscription.
    Ice {
        subscription_id: String,
        from: IcePeer,
        candidate: IceCandidate,
    },
    /// The other end of a subscription ended it.
    SubscriptionEnded {
        subscription_id: String,
        stream_id: String,
    },
    /// A moderator or the REST API asks the publisher of this stream to mute its audio.
    MuteForced {
        stream_id: String,
    },
    /// A routed peer connection of this client is up (ICE and DTLS done).
    MediaConnected {
        #[serde(flatten)]
        target: MediaTarget,
    },
    /// A routed peer connection of this client failed; the router removed it.
    MediaFailed {
        #[serde(flatten)]
        target: MediaTarget,
        message: String,
    },
    /// The router closed a peer connection of this client for another reason (e.g. the stream
    /// it received was unpublished).
    MediaClosed {
        #[serde(flatten)]
        target: MediaTarget,
        message: String,
    },
    /// The media router that carried this peer connection is gone (its cluster node died or is
    /// draining) and the session now lives on another node: the client makes a new peer
    /// connection for the same stream or subscription and sends its offer with `renegotiate`,
    /// keeping its end-to-end encryption state (the same secret, keys and frame counters).
    MediaRestart {
        #[serde(flatten)]
        target: MediaTarget,
    },
    /// Which simulcast layers (by `rid`) of this client's routed stream some subscriber
    /// receives now. The client keeps sending these and pauses the others (its encoder stops
    /// producing them) until a later `layers_wanted` lists them again. Sent when the set
    /// changes; an empty list pauses every layer (nobody watches the video).
    LayersWanted {
        stream_id: String,
        rids: Vec<String>,
    },
    /// What a routed subscription's video now carries: the simulcast layer (`rid`, null for a
    /// stream without simulcast), the highest temporal layer forwarded (null: all), or
    /// `paused` when no video goes to the subscriber (its preference, or no layer is sent).
    VideoLayerChanged {
        subscription_id: String,
        #[cfg_attr(feature = "typescript", ts(optional = nullable))]
        rid: Option<String>,
        #[cfg_attr(feature = "typescript", ts(optional = nullable))]
        temporal_layer: Option<u8>,
        paused: bool,
    },
    /// The stream whose audio is the loudest of the session changed (from the RFC 6464 audio
    /// levels publishers send in clear); null ids when nobody speaks any more.
    ActiveSpeakerChanged {
        #[cfg_attr(feature = "typescript", ts(optional = nullable))]
        stream_id: Option<String>,
        #[cfg_attr(feature = "typescript", ts(optional = nullable))]
        connection_id: Option<String>,
    },
    /// This connection is being removed; its socket closes with 4001 right after.
    ForcedDisconnect,
}
}

impl ServerMessage {
    /// Whether the message is an event (carries `seq`, is replayed on resume).
    pub fn is_event(&self) -> bool {
        !matches!(
            self,
            ServerMessage::Welcome { .. }
                | ServerMessage::Snapshot { .. }
                | ServerMessage::Resumed { .. }
                | ServerMessage::Ack { .. }
                | ServerMessage::Error { .. }
                | ServerMessage::Pong { .. }
        )
    }

    /// The wire name of the message type.
    pub fn kind(&self) -> &'static str {
        match self {
            ServerMessage::Welcome { .. } => "welcome",
            ServerMessage::Snapshot { .. } => "snapshot",
            ServerMessage::Resumed { .. } => "resumed",
            ServerMessage::Ack { .. } => "ack",
            ServerMessage::Error { .. } => "error",
            ServerMessage::Pong { .. } => "pong",
            ServerMessage::ConnectionCreated { .. } => "connection_created",
            ServerMessage::ConnectionDestroyed { .. } => "connection_destroyed",
            ServerMessage::StreamCreated { .. } => "stream_created",
            ServerMessage::StreamDestroyed { .. } => "stream_destroyed",
            ServerMessage::StreamPropertyChanged { .. } => "stream_property_changed",
            ServerMessage::Signal { .. } => "signal",
            ServerMessage::SubscribeOffer { .. } => "subscribe_offer",
            ServerMessage::Answer { .. } => "answer",
            ServerMessage::Ice { .. } => "ice",
            ServerMessage::SubscriptionEnded { .. } => "subscription_ended",
            ServerMessage::MuteForced { .. } => "mute_forced",
            ServerMessage::MediaConnected { .. } => "media_connected",
            ServerMessage::MediaFailed { .. } => "media_failed",
            ServerMessage::MediaClosed { .. } => "media_closed",
            ServerMessage::MediaRestart { .. } => "media_restart",
            ServerMessage::LayersWanted { .. } => "layers_wanted",
            ServerMessage::VideoLayerChanged { .. } => "video_layer_changed",
            ServerMessage::ActiveSpeakerChanged { .. } => "active_speaker_changed",
            ServerMessage::ForcedDisconnect => "forced_disconnect",
        }
    }

    /// Every wire name, for the documentation check.
    pub const KINDS: &'static [&'static str] = &[
        "welcome",
        "snapshot",
        "resumed",
        "ack",
        "error",
        "pong",
        "connection_created",
        "connection_destroyed",
        "stream_created",
        "stream_destroyed",
        "stream_property_changed",
        "signal",
        "subscribe_offer",
        "answer",
        "ice",
        "subscription_ended",
        "mute_forced",
        "media_connected",
        "media_failed",
        "media_closed",
        "media_restart",
        "layers_wanted",
        "video_layer_changed",
        "active_speaker_changed",
        "forced_disconnect",
    ];

    /// The JSON text of the message, once; events get their `seq` spliced in per connection.
    pub fn to_json(&self) -> String {
        // Serializing these types cannot fail: no maps with non-string keys, no custom impls.
        serde_json::to_string(self).unwrap_or_else(|e| unreachable!("ServerMessage serializes: {e}"))
    }
}

wire! {
/// What an `ack` adds to its `id`, by request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AckBody {
    /// `publish`: the new stream, and the router's answer (routed) or null (relayed).
    Published { stream_id: String, sdp_answer: Option<String> },
    /// `subscribe`: the new subscription, and the router's answer (routed) or null (relayed).
    Subscribed { subscription_id: String, sdp_answer: Option<String> },
    /// `renegotiate`: the new router's answer.
    Renegotiated { sdp_answer: String },
    /// Every other request.
    Done {},
}
}

wire! {
/// A stream property's old and new value, as `stream_property_changed` carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "property", rename_all = "snake_case")]
pub enum PropertyChanged {
    HasAudio { old_value: bool, new_value: bool },
    HasVideo { old_value: bool, new_value: bool },
    VideoDimensions { old_value: Option<VideoDimensions>, new_value: VideoDimensions },
}
}
