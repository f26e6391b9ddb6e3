//! The seam between signaling and the media router.
//!
//! In a routed session every peer connection ends at the router: a publisher's offer and a
//! subscriber's offer both go to the router, which answers. Signaling owns ids, roles and the E2EE
//! rules; the router only ever sees SDP, ICE candidates and ids, and (in e2ee sessions) encrypted
//! frames it forwards without reading. The router issue implements this trait on top of str0m and
//! `umbra serve` hosts it in-process; until then [`NoMediaRouter`] refuses routed media with
//! [`RouterError::Unavailable`] rather than inventing an answer.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub type RouterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RouterError>> + Send + 'a>>;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    #[error("this server has no media router: routed sessions cannot carry media yet")]
    Unavailable,
    #[error("the SDP offer was refused: {0}")]
    BadSdp(String),
    #[error("the media router has no stream {0}")]
    UnknownStream(String),
    #[error("the media router has no peer connection {0}")]
    UnknownTarget(String),
    #[error("the media router failed: {0}")]
    Failed(String),
}

impl RouterError {
    pub fn slug(&self) -> &'static str {
        match self {
            RouterError::Unavailable => "media_router_unavailable",
            RouterError::BadSdp(_) => "media_bad_sdp",
            RouterError::UnknownStream(_) => "media_unknown_stream",
            RouterError::UnknownTarget(_) => "media_unknown_target",
            RouterError::Failed(_) => "media_router_failed",
        }
    }
}

/// A trickled ICE candidate, as `RTCIceCandidateInit` carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, rename = "sdpMid", alias = "sdp_mid")]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex", alias = "sdp_m_line_index")]
    pub sdp_m_line_index: Option<u16>,
}

/// A publisher's upstream peer connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub session_id: String,
    pub connection_id: String,
    pub stream_id: String,
    pub sdp_offer: String,
    /// The SFrame cipher suite when the stream is end-to-end encrypted. The router must then
    /// forward frames untouched (no transcoding, no inspection beyond RTP headers).
    pub e2ee_cipher_suite: Option<u16>,
    pub has_audio: bool,
    pub has_video: bool,
}

/// A subscriber's downstream peer connection for one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscribeRequest {
    pub session_id: String,
    pub connection_id: String,
    pub subscription_id: String,
    pub stream_id: String,
    pub sdp_offer: String,
}

/// Which peer connection an ICE candidate belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaTarget {
    Publisher { stream_id: String },
    Subscriber { subscription_id: String },
}

/// What the router tells signaling on its own initiative; delivered to the connection named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouterEvent {
    pub session_id: String,
    pub connection_id: String,
    pub target: MediaTarget,
    pub kind: RouterEventKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouterEventKind {
    /// A server-side candidate to trickle to the client (an ICE-lite router puts its candidates
    /// in the SDP answer instead and never sends this).
    Candidate(IceCandidate),
    /// ICE and DTLS are up: media flows.
    Connected,
    /// The peer connection failed (ICE, consent or DTLS); the router has removed it.
    Failed(String),
    /// The router closed the peer connection for another reason (e.g. the stream it received
    /// was unpublished); it is gone.
    Closed(String),
}

pub type RouterEventSink = tokio::sync::mpsc::UnboundedSender<RouterEvent>;

pub trait MediaRouter: Send + Sync + 'static {
    /// Called once before any other method, with where to send [`RouterEvent`]s.
    fn start(&self, events: RouterEventSink);
    /// Accept a publisher's offer; returns the SDP answer.
    fn publish(&self, req: PublishRequest) -> RouterFuture<'_, String>;
    /// Accept a subscriber's offer for a published stream; returns the SDP answer.
    fn subscribe(&self, req: SubscribeRequest) -> RouterFuture<'_, String>;
    fn add_ice_candidate(&self, session_id: &str, target: MediaTarget, candidate: IceCandidate) -> RouterFuture<'_, ()>;
    /// Teardown never fails from signaling's point of view: it is told, and moves on.
    fn unpublish(&self, session_id: &str, stream_id: &str);
    fn unsubscribe(&self, session_id: &str, subscription_id: &str);
    /// Everything of one connection (its publications and subscriptions) goes away.
    fn disconnect(&self, session_id: &str, connection_id: &str);
}

/// The router used until the real one exists: refuses all routed media, clearly.
#[derive(Debug, Default)]
pub struct NoMediaRouter;

impl MediaRouter for NoMediaRouter {
    fn start(&self, _events: RouterEventSink) {}

    fn publish(&self, _req: PublishRequest) -> RouterFuture<'_, String> {
        Box::pin(async { Err(RouterError::Unavailable) })
    }

    fn subscribe(&self, _req: SubscribeRequest) -> RouterFuture<'_, String> {
        Box::pin(async { Err(RouterError::Unavailable) })
    }

    fn add_ice_candidate(&self, _: &str, _: MediaTarget, _: IceCandidate) -> RouterFuture<'_, ()> {
        Box::pin(async { Err(RouterError::Unavailable) })
    }

    fn unpublish(&self, _: &str, _: &str) {}
    fn unsubscribe(&self, _: &str, _: &str) {}
    fn disconnect(&self, _: &str, _: &str) {}
}
