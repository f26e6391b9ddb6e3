//! Wire format, version 1. Client messages are JSON objects with a `type`; requests carry an `id`
//! the server echoes in its `ack` or `error`. Server events carry a per-connection `seq` so that a
//! client resuming after a dropped socket says where it stopped.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::media_router::IceCandidate;

pub const PROTOCOL_VERSION: u32 = 1;
pub const SUPPORTED_VERSIONS: &[u32] = &[1];
pub const MAX_SIGNAL_TYPE: usize = 128;
pub const MAX_SIGNAL_DATA: usize = 8192;
/// Large enough for any SDP with simulcast and many codecs; small enough to bound memory.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientMessage {
    Connect {
        v: u32,
        token: String,
        #[serde(default)]
        session_id: Option<String>,
    },
    Resume {
        v: u32,
        session_id: String,
        connection_id: String,
        resume_token: String,
        last_seq: u64,
    },
    Publish {
        #[serde(default)]
        id: Value,
        stream: PublishStream,
        #[serde(default)]
        sdp_offer: Option<String>,
    },
    Unpublish {
        #[serde(default)]
        id: Value,
        stream_id: String,
    },
    Subscribe {
        #[serde(default)]
        id: Value,
        stream_id: String,
        sdp_offer: String,
    },
    Unsubscribe {
        #[serde(default)]
        id: Value,
        subscription_id: String,
    },
    /// A publisher answering a subscriber's offer (relayed sessions).
    Answer {
        #[serde(default)]
        id: Value,
        subscription_id: String,
        sdp_answer: String,
    },
    Ice {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        subscription_id: Option<String>,
        #[serde(default)]
        stream_id: Option<String>,
        candidate: IceCandidate,
    },
    Signal {
        #[serde(default)]
        id: Value,
        #[serde(default)]
        to: Option<String>,
        #[serde(default)]
        signal_type: Option<String>,
        data: String,
    },
    SetStreamProperty {
        #[serde(default)]
        id: Value,
        stream_id: String,
        property: StreamProperty,
        value: Value,
    },
    ForceDisconnect {
        #[serde(default)]
        id: Value,
        connection_id: String,
    },
    Ping {
        #[serde(default)]
        id: Value,
    },
    Leave,
}

#[derive(Debug, Clone, Deserialize)]
pub struct PublishStream {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default = "yes")]
    pub has_audio: bool,
    #[serde(default = "yes")]
    pub has_video: bool,
    #[serde(default)]
    pub video_type: Option<VideoType>,
    /// Present when the client encrypts the stream's frames end to end.
    #[serde(default)]
    pub e2ee: Option<E2eeDeclaration>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VideoType {
    Camera,
    Screen,
    Custom,
}

#[derive(Debug, Clone, Deserialize)]
pub struct E2eeDeclaration {
    pub cipher_suite: u16,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StreamProperty {
    HasAudio,
    HasVideo,
    VideoDimensions,
}

#[derive(Debug, Clone, Serialize)]
pub struct StreamInfo {
    pub stream_id: String,
    pub connection_id: String,
    pub name: String,
    pub has_audio: bool,
    pub has_video: bool,
    pub video_type: VideoType,
    pub video_dimensions: Option<Value>,
    pub e2ee: bool,
    pub cipher_suite: Option<u16>,
    pub created_at: i64,
    pub layout_class_list: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConnectionInfo {
    pub connection_id: String,
    pub data: Option<String>,
    pub created_at: i64,
}

/// Why a connection or stream went away, as OpenTok names the reasons.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub enum Reason {
    #[serde(rename = "clientDisconnected")]
    ClientDisconnected,
    #[serde(rename = "networkDisconnected")]
    NetworkDisconnected,
    #[serde(rename = "forceDisconnected")]
    ForceDisconnected,
    #[serde(rename = "unpublished")]
    Unpublished,
}

/// A refusal sent as `{"type":"error","id":…,"code":…,"message":…}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigError {
    pub code: &'static str,
    pub message: String,
}

impl SigError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

pub fn error_frame(id: &Value, e: &SigError) -> String {
    serde_json::json!({"type": "error", "id": id, "code": e.code, "message": e.message}).to_string()
}
