//! What a client sends (signaling.md § Handshake, § Requests).

use serde::{Deserialize, Serialize};

use crate::model::{IceCandidate, MediaTarget, VideoDimensions, VideoPreference, VideoType, wire};

wire! {
/// The `id` of a request, echoed by its `ack` or `error`: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum RequestId {
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    Number(u64),
    Text(String),
}
}

impl From<u64> for RequestId {
    fn from(n: u64) -> Self {
        RequestId::Number(n)
    }
}

wire! {
/// Every message a client sends. The first one on a socket is `connect` or `resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Connect {
        v: u32,
        token: String,
        /// The session the client means to join; refused with `token_wrong_session` if the token
        /// names another.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        session_id: Option<String>,
    },
    Resume {
        v: u32,
        session_id: String,
        connection_id: String,
        resume_token: String,
        /// The last event `seq` the client processed.
        #[cfg_attr(feature = "typescript", ts(type = "number"))]
        last_seq: u64,
    },
    Publish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        stream: PublishStream,
        /// Required in routed sessions, absent in relayed ones.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        sdp_offer: Option<String>,
    },
    Unpublish {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        stream_id: String,
    },
    Subscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        stream_id: String,
        sdp_offer: String,
    },
    Unsubscribe {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        subscription_id: String,
    },
    /// A publisher answering a subscriber's offer (relayed sessions).
    Answer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        subscription_id: String,
        sdp_answer: String,
    },
    Ice {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        subscription_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        stream_id: Option<String>,
        candidate: IceCandidate,
    },
    Signal {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        /// A connection id; absent for the whole session.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        signal_type: Option<String>,
        data: String,
    },
    SetStreamProperty {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        stream_id: String,
        #[serde(flatten)]
        change: PropertyChange,
    },
    /// Moderators only.
    ForceDisconnect {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        connection_id: String,
    },
    /// A subscriber's wishes for a routed subscription's video (routed sessions; a relayed
    /// subscription is refused with `bad_request`: there is no router to choose a layer).
    SetVideoPreference {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        subscription_id: String,
        #[serde(flatten)]
        preference: VideoPreference,
    },
    /// A new offer for a routed peer connection the server asked to restart (`media_restart`):
    /// the same stream or subscription, on the session's new media router.
    Renegotiate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
        #[serde(flatten)]
        target: MediaTarget,
        sdp_offer: String,
    },
    /// The heartbeat; answered by `pong`.
    Ping {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        #[cfg_attr(feature = "typescript", ts(optional))]
        id: Option<RequestId>,
    },
    Leave,
}
}

impl ClientMessage {
    /// The request id, for messages that are requests.
    pub fn id(&self) -> Option<&RequestId> {
        match self {
            ClientMessage::Connect { .. } | ClientMessage::Resume { .. } | ClientMessage::Leave => None,
            ClientMessage::Publish { id, .. }
            | ClientMessage::Unpublish { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Answer { id, .. }
            | ClientMessage::Ice { id, .. }
            | ClientMessage::Signal { id, .. }
            | ClientMessage::SetStreamProperty { id, .. }
            | ClientMessage::ForceDisconnect { id, .. }
            | ClientMessage::Renegotiate { id, .. }
            | ClientMessage::SetVideoPreference { id, .. }
            | ClientMessage::Ping { id } => id.as_ref(),
        }
    }

    /// Sets the request id of a request; messages that are not requests are left as they are.
    pub fn with_id(mut self, new: RequestId) -> Self {
        match &mut self {
            ClientMessage::Connect { .. } | ClientMessage::Resume { .. } | ClientMessage::Leave => {}
            ClientMessage::Publish { id, .. }
            | ClientMessage::Unpublish { id, .. }
            | ClientMessage::Subscribe { id, .. }
            | ClientMessage::Unsubscribe { id, .. }
            | ClientMessage::Answer { id, .. }
            | ClientMessage::Ice { id, .. }
            | ClientMessage::Signal { id, .. }
            | ClientMessage::SetStreamProperty { id, .. }
            | ClientMessage::ForceDisconnect { id, .. }
            | ClientMessage::Renegotiate { id, .. }
            | ClientMessage::SetVideoPreference { id, .. }
            | ClientMessage::Ping { id } => *id = Some(new),
        }
        self
    }

    /// The wire name of the message type.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientMessage::Connect { .. } => "connect",
            ClientMessage::Resume { .. } => "resume",
            ClientMessage::Publish { .. } => "publish",
            ClientMessage::Unpublish { .. } => "unpublish",
            ClientMessage::Subscribe { .. } => "subscribe",
            ClientMessage::Unsubscribe { .. } => "unsubscribe",
            ClientMessage::Answer { .. } => "answer",
            ClientMessage::Ice { .. } => "ice",
            ClientMessage::Signal { .. } => "signal",
            ClientMessage::SetStreamProperty { .. } => "set_stream_property",
            ClientMessage::ForceDisconnect { .. } => "force_disconnect",
            ClientMessage::Renegotiate { .. } => "renegotiate",
            ClientMessage::SetVideoPreference { .. } => "set_video_preference",
            ClientMessage::Ping { .. } => "ping",
            ClientMessage::Leave => "leave",
        }
    }

    /// Every wire name, for the documentation check.
    pub const KINDS: &'static [&'static str] = &[
        "connect",
        "resume",
        "publish",
        "unpublish",
        "subscribe",
        "unsubscribe",
        "answer",
        "ice",
        "signal",
        "set_stream_property",
        "force_disconnect",
        "renegotiate",
        "set_video_preference",
        "ping",
        "leave",
    ];
}

wire! {
/// The stream a `publish` announces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishStream {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub name: Option<String>,
    #[serde(default = "yes")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<bool>", optional))]
    pub has_audio: bool,
    #[serde(default = "yes")]
    #[cfg_attr(feature = "typescript", ts(as = "Option<bool>", optional))]
    pub has_video: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub video_type: Option<VideoType>,
    /// The size of the video sent (of the largest simulcast layer), when the client knows it;
    /// the stream's `video_dimensions` start as this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub video_dimensions: Option<VideoDimensions>,
    /// Present when the client encrypts the stream's frames end to end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "typescript", ts(optional))]
    pub e2ee: Option<E2eeDeclaration>,
}
}

fn yes() -> bool {
    true
}

wire! {
/// A publisher's declaration that it encrypts with this SFrame cipher suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct E2eeDeclaration {
    pub cipher_suite: u16,
}
}

wire! {
/// A stream property and its new value, as `set_stream_property` carries them: the `property`
/// names which, and `value` has that property's type (a strict schema: a dimension object for
/// `has_audio` is refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "property", content = "value", rename_all = "snake_case")]
pub enum PropertyChange {
    HasAudio(bool),
    HasVideo(bool),
    VideoDimensions(VideoDimensions),
}
}
