//! Hosts the str0m media router (`umbra-router`) behind the signaling seam.
//!
//! The router runs its own thread with a synchronous API; its calls answer in microseconds to
//! milliseconds, so they run on tokio's blocking pool to keep the async workers free.

use std::net::SocketAddr;
use umbra_router::{PublishSpec, Router, RouterConfig, RouterHandle, SubscribeSpec, Target};

use crate::media_router::{
    IceCandidate, MediaRouter, MediaTarget, PublishRequest, RouterError, RouterEvent, RouterEventKind, RouterEventSink,
    RouterFuture, SubscribeRequest,
};

/// Where the router listens and what it advertises.
#[derive(Debug, Clone)]
pub struct MediaOptions {
    /// UDP addresses to bind (one per address family).
    pub bind: Vec<SocketAddr>,
    /// Addresses put into ICE candidates, when clients reach the router through another
    /// address (NAT, a proxy). Empty: the bound addresses.
    pub advertise: Vec<SocketAddr>,
}

pub struct HostedRouter {
    handle: RouterHandle,
}

impl HostedRouter {
    pub fn start(options: &MediaOptions) -> Result<Self, umbra_router::RouterError> {
        let mut config = RouterConfig::new(options.bind.clone());
        if !options.advertise.is_empty() {
            config.advertised = Some(options.advertise.clone());
        }
        Ok(Self { handle: Router::start(config)? })
    }

    pub fn handle(&self) -> &RouterHandle {
        &self.handle
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.handle.local_addrs()
    }
}

impl HostedRouter {
    /// Teardown from signaling: fire and forget on the blocking pool (an unknown id just means
    /// the router already let it go).
    fn tell(&self, session_id: &str, id: &str, f: impl FnOnce(&RouterHandle, &str, &str) -> umbra_router::Result<()> + Send + 'static) {
        let (handle, s, id) = (self.handle.clone(), session_id.to_string(), id.to_string());
        tokio::task::spawn_blocking(move || {
            let _ = f(&handle, &s, &id);
        });
    }
}

fn map_event(ev: umbra_router::RouterEvent) -> RouterEvent {
    let kind = match ev.kind {
        umbra_router::RouterEventKind::Connected => RouterEventKind::Connected,
        umbra_router::RouterEventKind::Failed(msg) => RouterEventKind::Failed(msg),
        umbra_router::RouterEventKind::Closed(reason) => RouterEventKind::Closed(format!("{reason:?}")),
    };
    let target = match ev.target {
        Target::Publisher { stream_id } => MediaTarget::Publisher { stream_id },
        Target::Subscriber { subscription_id } => MediaTarget::Subscriber { subscription_id },
    };
    RouterEvent { session_id: ev.session_id, connection_id: ev.connection_id, target, kind }
}

fn map_err(e: umbra_router::RouterError) -> RouterError {
    use umbra_router::RouterError as E;
    match e {
        E::BadSdp(m) | E::OfferRefused(m) | E::NoUsableMedia(m) => RouterError::BadSdp(m),
        E::UnknownStream { .. } => RouterError::UnknownStream(e.to_string()),
        E::UnknownSubscription { .. } | E::UnknownConnection { .. } => RouterError::UnknownTarget(e.to_string()),
        E::BadCandidate(m) => RouterError::BadSdp(format!("bad ICE candidate: {m}")),
        other => RouterError::Failed(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, umbra_router::RouterError> + Send + 'static) -> Result<T, RouterError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(map_err),
        Err(e) => Err(RouterError::Failed(format!("router call panicked or was cancelled: {e}"))),
    }
}

impl MediaRouter for HostedRouter {
    fn start(&self, events: RouterEventSink) {
        // Runs on the router thread: only hands the event over.
        let sink = Box::new(move |ev: umbra_router::RouterEvent| {
            let _ = events.send(map_event(ev));
        });
        if let Err(e) = self.handle.set_event_sink(Some(sink)) {
            tracing::error!(error = %e, "media router events are not delivered");
        }
    }

    fn publish(&self, req: PublishRequest) -> RouterFuture<'_, String> {
        let handle = self.handle.clone();
        Box::pin(blocking(move || {
            handle.publish(PublishSpec {
                session_id: req.session_id,
                connection_id: req.connection_id,
                stream_id: req.stream_id,
                sdp_offer: req.sdp_offer,
            })
        }))
    }

    fn subscribe(&self, req: SubscribeRequest) -> RouterFuture<'_, String> {
        let handle = self.handle.clone();
        Box::pin(blocking(move || {
            handle.subscribe(SubscribeSpec {
                session_id: req.session_id,
                connection_id: req.connection_id,
                subscription_id: req.subscription_id,
                stream_id: req.stream_id,
                sdp_offer: req.sdp_offer,
            })
        }))
    }

    fn add_ice_candidate(&self, session_id: &str, target: MediaTarget, candidate: IceCandidate) -> RouterFuture<'_, ()> {
        let handle = self.handle.clone();
        let session_id = session_id.to_string();
        let target = match target {
            MediaTarget::Publisher { stream_id } => Target::Publisher { stream_id },
            MediaTarget::Subscriber { subscription_id } => Target::Subscriber { subscription_id },
        };
        Box::pin(async move {
            // An ICE-lite router learns addresses from connectivity checks; an end-of-candidates
            // marker carries nothing to add.
            if candidate.candidate.trim().is_empty() {
                return Ok(());
            }
            blocking(move || handle.add_remote_candidate(&session_id, target, &candidate.candidate)).await
        })
    }

    fn unpublish(&self, session_id: &str, stream_id: &str) {
        self.tell(session_id, stream_id, |h, s, id| h.unpublish(s, id));
    }

    fn unsubscribe(&self, session_id: &str, subscription_id: &str) {
        self.tell(session_id, subscription_id, |h, s, id| h.unsubscribe(s, id));
    }

    fn disconnect(&self, session_id: &str, connection_id: &str) {
        self.tell(session_id, connection_id, |h, s, id| h.disconnect(s, id));
    }
}
