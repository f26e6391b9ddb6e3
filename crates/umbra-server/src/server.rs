//! Assembles the store, the signaling hub and the HTTP router, and runs them until a shutdown
//! signal, then drains.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::HttpOptions;
use crate::http::conn_table::ConnTable;
use crate::http::host::HostPolicy;
use crate::media_router::MediaRouter;
use crate::metrics::Metrics;
use crate::signaling::{Hub, HubConfig};
use crate::state::AppState;
use crate::store::{Store, StoreError};

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub clock_skew_secs: i64,
    pub shutdown_grace: Duration,
    pub hub: HubConfig,
    /// Cluster mode (`--redis`); `None`: a single node.
    pub cluster: Option<crate::cluster::ClusterOptions>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("server failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot join the cluster: {0}")]
    Cluster(#[from] crate::cluster::ClusterError),
}

/// Runs until SIGINT/SIGTERM. Prints `umbra listening on http://ADDR` on stdout once bound
/// (scripts and tests read the real port from it when `listen` has port 0).
pub async fn serve(opts: ServeOptions, store: Arc<dyn Store>, router: Arc<dyn MediaRouter>) -> Result<(), ServeError> {
    serve_with_web(opts, store, router, crate::api::web::WebOptions::default()).await
}

/// [`serve`] with the Web SDK / demo settings given.
pub async fn serve_with_web(
    opts: ServeOptions,
    store: Arc<dyn Store>,
    router: Arc<dyn MediaRouter>,
    web: crate::api::web::WebOptions,
) -> Result<(), ServeError> {
    serve_http(opts, HttpOptions::default(), store, router, web).await
}

/// [`serve_with_web`] with the HTTP layer's timeouts, connection cap and `Host` allow-list given.
pub async fn serve_http(
    opts: ServeOptions,
    http: HttpOptions,
    store: Arc<dyn Store>,
    router: Arc<dyn MediaRouter>,
    web: crate::api::web::WebOptions,
) -> Result<(), ServeError> {
    let metrics = Arc::new(Metrics::default());
    let hub = Hub::new(opts.hub.clone(), router, metrics.clone());
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(|source| ServeError::Bind { addr: opts.listen, source })?;
    let addr = listener.local_addr()?;
    let cluster = match &opts.cluster {
        Some(c) => {
            let mut c = c.clone();
            if c.url.is_empty() {
                // Other nodes reach this one where it listens (set --cluster-url behind NAT).
                c.url = format!("http://{addr}");
            }
            Some(crate::cluster::Cluster::start(c, hub.clone(), store.clone()).await?)
        }
        None => None,
    };
    let state = Arc::new(AppState {
        cluster: cluster.clone(),
        store,
        hub: hub.clone(),
        metrics,
        clock_skew_secs: opts.clock_skew_secs,
        shutdown: shutdown_rx,
        web,
        demo_rooms: Default::default(),
        hosts: HostPolicy::new(&http.allowed_hosts),
    });
    if state.web.demo {
        tokio::spawn(crate::api::demo_rooms::expire_loop(Arc::clone(&state)));
    }
    let app = crate::api::router(state);
    tracing::info!(%addr, data_dir = %opts.data_dir.display(), "umbra listening");
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "umbra listening on http://{addr}");
        let _ = out.flush();
    }
    let grace = opts.shutdown_grace;
    let cap = http.max_connections.unwrap_or_else(crate::http::fd_limit::default_max_connections);
    tracing::info!(
        max_connections = cap,
        header_read_timeout_secs = http.header_read_timeout.as_secs_f32(),
        request_timeout_secs = http.request_timeout.as_secs_f32(),
        "HTTP limits"
    );
    let table = ConnTable::new(cap);
    let server = crate::http::listener::serve(listener, app, &http, table, async move {
        shutdown_signal().await;
        if let Some(cluster) = &cluster {
            tracing::info!("shutting down: moving this node's sessions to other nodes");
            match cluster.drain().await {
                Ok(n) => tracing::info!(sessions = n, "sessions moved"),
                Err(e) => tracing::error!(error = %e, "moving sessions failed; they end with this node"),
            }
        }
        tracing::info!("shutting down: closing signaling sockets, draining requests");
        let _ = shutdown_tx.send(true);
        hub.shutdown();
    });
    // Bound the drain: a client that never finishes its request must not hold the exit.
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => {},
        _ = async {
            shutdown_signal().await;
            tokio::time::sleep(grace).await;
        } => tracing::warn!("shutdown grace period elapsed; exiting with requests in flight"),
    }
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
