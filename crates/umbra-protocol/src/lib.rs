//! Umbra signaling, version 1: the one definition of what travels over `/v1/signaling`.
//!
//! `docs/signaling.md` explains the protocol to people; this crate is the same protocol as types,
//! and a test keeps the two in step (every message type documented exists here and the other way
//! round). The server constructs only these values, the Rust SDK parses [`ServerFrame`] with an
//! exhaustive match, and the Web SDK's `src/api/protocol.gen.ts` is generated from them
//! (`cargo run -p umbra-protocol --example typescript --features typescript`; a test fails when
//! the committed file is stale).
//!
//! No I/O and no allocation policy here: serde types, constants and the pure rules of the
//! protocol (what a role may do, which error ends a handshake).

#![forbid(unsafe_code)]

mod client;
mod error;
mod model;
mod server;

#[cfg(feature = "typescript")]
pub mod typescript;

pub use client::{ClientMessage, E2eeDeclaration, PropertyChange, PublishStream, RequestId};
pub use error::ErrorCode;
pub use model::{
    ArchiveMode, ConnectionInfo, IceCandidate, IcePeer, MediaMode, MediaTarget, Reason, Role, StreamInfo,
    VideoDimensions, VideoPreference, VideoType,
};
pub use server::{AckBody, PropertyChanged, ServerFrame, ServerMessage};

/// The version this crate speaks: `v` of `connect`, `resume` and `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;
/// Every version a server built from this crate accepts.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Limits every implementation enforces or relies on.
pub mod limits {
    /// One WebSocket text frame: large enough for any SDP with simulcast and many codecs, small
    /// enough to bound a socket's memory.
    pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
    /// `signal_type`: letters, digits, `-` and `_`, at most this many characters.
    pub const MAX_SIGNAL_TYPE: usize = 128;
    /// `data` of a signal, in bytes of UTF-8.
    pub const MAX_SIGNAL_DATA: usize = 8192;
    /// Connections and streams per page of a session description (`welcome`, then `snapshot`s).
    pub const SNAPSHOT_PAGE: usize = 100;
    /// The first client message must arrive within this many milliseconds.
    pub const HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
    /// `connection_data` of a token, in bytes (and the token's `initial_layout_class_list`).
    pub const MAX_CONNECTION_DATA: usize = 1000;
    /// `width` and `height` of `video_dimensions` are 1 to this many pixels: above 8K (7680) and
    /// wide multi-monitor screen shares, below anything a decoder would take.
    pub const MAX_VIDEO_DIMENSION: u32 = 16_384;
    /// `candidate.candidate` of `ice`, in bytes: a candidate line is well under 300.
    pub const MAX_ICE_CANDIDATE: usize = 1024;
    /// `candidate.sdpMid` of `ice`, in bytes.
    pub const MAX_SDP_MID: usize = 64;
    /// A string request `id`, in bytes: it is echoed in the reply.
    pub const MAX_REQUEST_ID: usize = 128;
}

/// WebSocket close codes the server uses, beside 1000 (the client left).
pub mod close {
    /// The server is shutting down.
    pub const SERVER_SHUTDOWN: u16 = 1001;
    /// A moderator or the REST API removed this connection.
    pub const FORCED: u16 = 4001;
    /// The connection was resumed on another socket.
    pub const REPLACED: u16 = 4002;
    /// The handshake was refused; the preceding `error` says why.
    pub const HANDSHAKE_REFUSED: u16 = 4003;
    /// The session moved to another cluster node (this node is draining, or the node that hosted
    /// the session is gone): resume, through the same address, and a live node takes the socket.
    pub const SESSION_MOVED: u16 = 4004;
}

/// Whether a `video_dimensions` value is a picture size; `Err` says why not.
pub fn validate_video_dimensions(d: &VideoDimensions) -> Result<(), String> {
    let range = 1..=limits::MAX_VIDEO_DIMENSION;
    if range.contains(&d.width) && range.contains(&d.height) {
        return Ok(());
    }
    Err(format!(
        "video_dimensions {}x{} is out of range: width and height are 1 to {}",
        d.width,
        d.height,
        limits::MAX_VIDEO_DIMENSION
    ))
}

/// Whether an `ice` candidate is within the protocol's limits; `Err` says which part is not.
pub fn validate_ice_candidate(c: &IceCandidate) -> Result<(), String> {
    if c.candidate.len() > limits::MAX_ICE_CANDIDATE {
        return Err(format!("candidate is {} bytes; the limit is {}", c.candidate.len(), limits::MAX_ICE_CANDIDATE));
    }
    if c.sdp_mid.as_ref().is_some_and(|m| m.len() > limits::MAX_SDP_MID) {
        return Err(format!("sdpMid is longer than {} bytes", limits::MAX_SDP_MID));
    }
    Ok(())
}

/// Whether a request `id` is within the protocol's limits.
pub fn validate_request_id(id: &RequestId) -> Result<(), String> {
    match id {
        RequestId::Text(t) if t.len() > limits::MAX_REQUEST_ID => {
            Err(format!("a string id is at most {} bytes", limits::MAX_REQUEST_ID))
        }
        _ => Ok(()),
    }
}

/// Whether `signal_type` and `data` are within the protocol's rules; `Err` says which is not and why.
pub fn validate_signal(signal_type: Option<&str>, data: &str) -> Result<(), String> {
    if data.len() > limits::MAX_SIGNAL_DATA {
        return Err(format!("signal data is {} bytes; the limit is {}", data.len(), limits::MAX_SIGNAL_DATA));
    }
    if let Some(t) = signal_type {
        if t.len() > limits::MAX_SIGNAL_TYPE {
            return Err(format!("signal type is longer than {} characters", limits::MAX_SIGNAL_TYPE));
        }
        if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("signal type may contain only letters, digits, '-' and '_'".into());
        }
    }
    Ok(())
}
