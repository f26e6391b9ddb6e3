//! Health and metrics endpoints.

use std::sync::Arc;

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

pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let stored = state.with_store(|s| s.session_count()).await.ok();
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render(stored))
        .into_response()
}
