//! What every HTTP handler and signaling socket shares.

use std::sync::Arc;

use tokio::sync::watch;

use crate::api::demo_rooms::DemoRooms;
use crate::api::web::WebOptions;
use crate::cluster::ops::{Op, OpReply};
use crate::cluster::{Cluster, OpError};
use crate::metrics::Metrics;
use crate::signaling::Hub;
use crate::store::{Store, StoreError};

pub struct AppState {
    pub store: Arc<dyn Store>,
    pub hub: Arc<Hub>,
    pub metrics: Arc<Metrics>,
    /// Allowed clock difference, in seconds, when checking `iat`/`exp`.
    pub clock_skew_secs: i64,
    /// Flips to `true` when the server begins shutting down.
    pub shutdown: watch::Receiver<bool>,
    /// Where the Web SDK and the demo app are served from, and whether demo tokens are issued.
    pub web: WebOptions,
    pub demo_rooms: DemoRooms,
    /// `Host` names accepted on the browser-facing routes.
    pub hosts: crate::http::host::HostPolicy,
    /// Cluster mode (`--redis`); `None` on a single node.
    pub cluster: Option<Arc<Cluster>>,
}

impl AppState {
    /// Runs a REST operation on a live session where the session lives (this node, or in
    /// cluster mode the node hosting it).
    pub async fn session_op(&self, op: Op) -> Result<OpReply, OpError> {
        match &self.cluster {
            Some(c) => c.run(op).await,
            None => op.run_local(&self.hub).into_result(),
        }
    }

    /// Runs a store call on the blocking pool so that a slow disk never stalls the runtime.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let store = Arc::clone(&self.store);
        match tokio::task::spawn_blocking(move || f(store.as_ref())).await {
            Ok(r) => r,
            Err(e) => Err(StoreError::Corrupt(format!("store task failed: {e}"))),
        }
    }
}
