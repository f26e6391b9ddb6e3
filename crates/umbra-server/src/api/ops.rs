//! Health and metrics endpoints.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::json_response;
use crate::state::AppState;

/// Healthy when the store answers a query.
pub async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match state.with_store(|s| s.session_count()).await {
        Ok(_) => json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})),
        Err(e) => {
            tracing::error!(error = %e, "health check: store failed");
            json_response(StatusCode::SERVICE_UNAVAILABLE, &serde_json::json!({"status": "store unavailable"}))
        }
    }
}

/// How long a scrape waits for the media router's counters (each worker answers between two
/// of its loop turns, normally in microseconds) before leaving them out.
const ROUTER_STATS_WAIT: Duration = Duration::from_secs(3);

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stored = state.with_store(|s| s.session_count()).await.ok();
    let router = match tokio::time::timeout(ROUTER_STATS_WAIT, state.hub.router_stats()).await {
        Ok(Ok(stats)) => stats,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: the media router's counters are left out");
            None
        }
        Err(_) => {
            tracing::warn!(
                "metrics: the media router did not answer within {ROUTER_STATS_WAIT:?}; its counters are left out"
            );
            None
        }
    };
    let body = state.metrics.render(stored, router.as_ref());
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response()
}
