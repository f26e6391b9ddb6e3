//! Hosts the str0m media router (`umbra-router`) behind the signaling seam.
//!
//! The router runs its own thread with a synchronous API; its calls answer in microseconds to
//! milliseconds, so they run on tokio's blocking pool to keep the async workers free.

use std::net::SocketAddr;

use umbra_router::{Router, RouterConfig, RouterHandle};

use crate::media_router::{
    MediaError, MediaRouter, PublishSpec, RouterError, RouterEventSink, RouterFuture, RouterStats, SubscribeSpec,
    Target, VideoWish,
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

/// How the router works, beyond where it listens. `Default` is the router's own defaults.
#[derive(Debug, Clone, Default)]
pub struct RouterTuning {
    /// Media worker threads; `None`: one per core.
    pub media_workers: Option<usize>,
    /// Turn send-side bandwidth estimation, and with it str0m's pacer, off: packets go out as
    /// soon as they are written. For diagnosis (does pacing hold media back?).
    pub bwe_off: bool,
    /// Estimate (and pace) on every subscription, not only where the publisher has layers to
    /// choose among (`RouterConfig::bwe_every_subscription`).
    pub bwe_every_subscription: bool,
    /// Oldest media sent to a subscriber; `None`: the router's default (200 ms).
    pub max_queue_delay: Option<std::time::Duration>,
    /// Each media worker sends on itself instead of through a send thread
    /// (`RouterConfig::send_thread`).
    pub inline_send: bool,
}

pub struct HostedRouter {
    handle: RouterHandle,
}

impl HostedRouter {
    pub fn start(options: &MediaOptions) -> Result<Self, RouterError> {
        Self::start_with(options, &RouterTuning::default())
    }

    pub fn start_with(options: &MediaOptions, tuning: &RouterTuning) -> Result<Self, RouterError> {
        let mut config = RouterConfig::new(options.bind.clone());
        if !options.advertise.is_empty() {
            config.advertised = Some(options.advertise.clone());
        }
        if let Some(n) = tuning.media_workers {
            config.media_workers = n;
        }
        if tuning.bwe_off {
            config.bwe_initial_bps = None;
        }
        config.bwe_every_subscription = tuning.bwe_every_subscription;
        if let Some(d) = tuning.max_queue_delay {
            config.max_queue_delay = d;
        }
        config.send_thread = !tuning.inline_send;
        Ok(Self { handle: Router::start(config)? })
    }

    pub fn handle(&self) -> &RouterHandle {
        &self.handle
    }

    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.handle.local_addrs()
    }

    /// Teardown from signaling: fire and forget on the blocking pool (an unknown id just means
    /// the router already let it go).
    fn tell(
        &self,
        session_id: &str,
        id: &str,
        f: impl FnOnce(&RouterHandle, &str, &str) -> umbra_router::Result<()> + Send + 'static,
    ) {
        let (handle, s, id) = (self.handle.clone(), session_id.to_owned(), id.to_owned());
        tokio::task::spawn_blocking(move || {
            let _ = f(&handle, &s, &id);
        });
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> umbra_router::Result<T> + Send + 'static,
) -> Result<T, MediaError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => Ok(r?),
        Err(e) => Err(MediaError::Lost(e.to_string())),
    }
}

impl MediaRouter for HostedRouter {
    fn start(&self, events: RouterEventSink) {
        // Runs on the router thread: only hands the event over.
        let sink = Box::new(move |ev| {
            let _ = events.send(ev);
        });
        if let Err(e) = self.handle.set_event_sink(Some(sink)) {
            tracing::error!(error = %e, "media router events are not delivered");
        }
    }

    fn publish(&self, spec: PublishSpec) -> RouterFuture<'_, String> {
        let handle = self.handle.clone();
        Box::pin(blocking(move || handle.publish(spec)))
    }

    fn subscribe(&self, spec: SubscribeSpec) -> RouterFuture<'_, String> {
        let handle = self.handle.clone();
        Box::pin(blocking(move || handle.subscribe(spec)))
    }

    fn add_ice_candidate(&self, session_id: &str, target: Target, candidate: String) -> RouterFuture<'_, ()> {
        let handle = self.handle.clone();
        let session_id = session_id.to_owned();
        Box::pin(async move {
            // An ICE-lite router learns addresses from connectivity checks; an end-of-candidates
            // marker carries nothing to add.
            if candidate.trim().is_empty() {
                return Ok(());
            }
            blocking(move || handle.add_remote_candidate(&session_id, target, &candidate)).await
        })
    }

    fn stats(&self) -> RouterFuture<'_, Option<RouterStats>> {
        let handle = self.handle.clone();
        Box::pin(blocking(move || handle.stats().map(Some)))
    }

    fn set_video_wish(&self, session_id: &str, subscription_id: &str, wish: VideoWish) -> RouterFuture<'_, ()> {
        let handle = self.handle.clone();
        let (session_id, subscription_id) = (session_id.to_owned(), subscription_id.to_owned());
        Box::pin(blocking(move || handle.set_video_wish(&session_id, &subscription_id, wish)))
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
