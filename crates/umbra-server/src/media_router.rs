//! The seam between signaling and the media router.
//!
//! In a routed session every peer connection ends at the router: a publisher's offer and a
//! subscriber's offer both go to it, and it answers. Signaling owns ids, roles and the E2EE rules;
//! the router only sees SDP, candidates and ids, and (in e2ee sessions) frames it forwards without
//! reading. The seam speaks umbra-router's own types ([`PublishSpec`], [`Target`],
//! [`RouterEvent`], [`RouterError`]) so there is one definition of each; the trait exists so
//! that `--no-media` ([`NoMediaRouter`]) and tests can stand in for the hosted router.

use std::future::Future;
use std::pin::Pin;

use umbra_protocol::{ErrorCode, MediaTarget};
pub use umbra_router::{
    CloseReason, PublishSpec, RouterError, RouterEvent, RouterEventKind, RouterStats, SubscribeSpec, Target, VideoWish,
};

/// Why a router call did not give what signaling asked for.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The server runs without a router (`--no-media`).
    #[error("this server has no media router (it runs with --no-media): routed sessions cannot carry media")]
    Unavailable,
    #[error(transparent)]
    Router(#[from] RouterError),
    /// The call never came back (the blocking task panicked or was cancelled).
    #[error("the media router call was lost: {0}")]
    Lost(String),
}

impl MediaError {
    /// The signaling error code a client gets for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            MediaError::Unavailable | MediaError::Router(RouterError::Stopped) => ErrorCode::MediaRouterUnavailable,
            MediaError::Router(
                RouterError::BadSdp(_)
                | RouterError::OfferRefused(_)
                | RouterError::NoUsableMedia(_)
                | RouterError::BadCandidate(_),
            ) => ErrorCode::MediaBadSdp,
            MediaError::Router(RouterError::UnknownStream { .. }) => ErrorCode::MediaUnknownStream,
            MediaError::Router(RouterError::UnknownSubscription { .. } | RouterError::UnknownConnection { .. }) => {
                ErrorCode::MediaUnknownTarget
            }
            // Everything else (a duplicate id, which signaling never makes; entropy, setup or
            // internal failures) is the server's fault, not the request's.
            MediaError::Router(_) | MediaError::Lost(_) => ErrorCode::MediaRouterFailed,
        }
    }
}

/// The protocol's name for the peer connection a router event is about.
pub fn media_target(t: Target) -> MediaTarget {
    match t {
        Target::Publisher { stream_id } => MediaTarget::Stream { stream_id },
        Target::Subscriber { subscription_id } => MediaTarget::Subscription { subscription_id },
    }
}

/// What a client is told when the router closed one of its peer connections.
pub fn close_message(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::StreamEnded => "the stream ended",
    }
}

pub type RouterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, MediaError>> + Send + 'a>>;
pub type RouterEventSink = tokio::sync::mpsc::UnboundedSender<RouterEvent>;

pub trait MediaRouter: Send + Sync + 'static {
    /// Called once before any other method, with where to send [`RouterEvent`]s.
    fn start(&self, events: RouterEventSink);
    /// Accepts a publisher's offer; returns the SDP answer.
    fn publish(&self, spec: PublishSpec) -> RouterFuture<'_, String>;
    /// Accepts a subscriber's offer for a published stream; returns the SDP answer.
    fn subscribe(&self, spec: SubscribeSpec) -> RouterFuture<'_, String>;
    /// A client's trickled candidate line (`candidate:…`; empty for the end of candidates).
    fn add_ice_candidate(&self, session_id: &str, target: Target, candidate: String) -> RouterFuture<'_, ()>;
    /// A subscriber's wishes for a subscription's video (layer choice, `set_video_preference`).
    fn set_video_wish(&self, session_id: &str, subscription_id: &str, wish: VideoWish) -> RouterFuture<'_, ()>;
    /// Teardown never fails from signaling's point of view: it is told, and moves on.
    fn unpublish(&self, session_id: &str, stream_id: &str);
    fn unsubscribe(&self, session_id: &str, subscription_id: &str);
    /// Everything of one connection (its publications and subscriptions) goes away.
    fn disconnect(&self, session_id: &str, connection_id: &str);
    /// The router's counters for `/metrics`; `None` where there is no router to ask.
    fn stats(&self) -> RouterFuture<'_, Option<RouterStats>> {
        Box::pin(async { Ok(None) })
    }
}

/// `--no-media`: refuses all routed media, clearly, rather than inventing answers.
#[derive(Debug, Default)]
pub struct NoMediaRouter;

impl MediaRouter for NoMediaRouter {
    fn start(&self, _events: RouterEventSink) {}

    fn publish(&self, _spec: PublishSpec) -> RouterFuture<'_, String> {
        Box::pin(async { Err(MediaError::Unavailable) })
    }

    fn subscribe(&self, _spec: SubscribeSpec) -> RouterFuture<'_, String> {
        Box::pin(async { Err(MediaError::Unavailable) })
    }

    fn add_ice_candidate(&self, _: &str, _: Target, _: String) -> RouterFuture<'_, ()> {
        Box::pin(async { Err(MediaError::Unavailable) })
    }

    fn set_video_wish(&self, _: &str, _: &str, _: VideoWish) -> RouterFuture<'_, ()> {
        Box::pin(async { Err(MediaError::Unavailable) })
    }

    fn unpublish(&self, _: &str, _: &str) {}
    fn unsubscribe(&self, _: &str, _: &str) {}
    fn disconnect(&self, _: &str, _: &str) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn router_failures_map_to_their_codes_with_readable_messages() {
        let stream = RouterError::UnknownStream { session_id: "s".into(), stream_id: "x".into() };
        let cases = [
            (MediaError::Unavailable, ErrorCode::MediaRouterUnavailable),
            (MediaError::Router(RouterError::Stopped), ErrorCode::MediaRouterUnavailable),
            (MediaError::Router(RouterError::NoUsableMedia("no video".into())), ErrorCode::MediaBadSdp),
            (MediaError::Router(RouterError::BadCandidate("x".into())), ErrorCode::MediaBadSdp),
            (MediaError::Router(stream), ErrorCode::MediaUnknownStream),
            (MediaError::Router(RouterError::Internal("boom".into())), ErrorCode::MediaRouterFailed),
            (MediaError::Lost("cancelled".into()), ErrorCode::MediaRouterFailed),
        ];
        for (e, code) in cases {
            assert_eq!(e.code(), code, "{e}");
            let m = e.to_string();
            assert!(!m.contains('{') && !m.contains("Router("), "a Debug rendering reached the message: {m}");
        }
    }
}
