//! The HTTP surface: the OpenTok-compatible REST API, the signaling WebSocket endpoint, and the
//! operational endpoints. [`ROUTES`] is the single list the router is built from; the OpenAPI
//! document is tested against it.

mod auth;
pub mod body;
pub mod demo_rooms;
pub mod error;
mod ops;
mod project;
mod sessions;
pub mod web;

use std::sync::Arc;

use axum::Router;
use axum::extract::{MatchedPath, Request, State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post};

use crate::state::AppState;
use error::{ApiError, codes};
use umbra_protocol::limits::MAX_MESSAGE_BYTES;

pub const SIGNALING_PATH: &str = "/v1/signaling";

/// Every (method, path) the server answers, in axum's `{param}` syntax.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", SIGNALING_PATH),
    ("POST", "/session/create"),
    ("POST", "/v2/project/{apiKey}/session/{sessionId}/signal"),
    ("POST", "/v2/project/{apiKey}/session/{sessionId}/connection/{connectionId}/signal"),
    ("DELETE", "/v2/project/{apiKey}/session/{sessionId}/connection/{connectionId}"),
    ("GET", "/v2/project/{apiKey}/session/{sessionId}/stream"),
    ("GET", "/v2/project/{apiKey}/session/{sessionId}/stream/{streamId}"),
    ("POST", "/v2/project/{apiKey}/session/{sessionId}/stream/{streamId}/mute"),
    ("POST", "/v2/project/{apiKey}/session/{sessionId}/mute"),
    ("POST", "/v2/project/{apiKey}/archive"),
    ("POST", "/v2/project/{apiKey}/broadcast"),
    ("POST", "/v2/project/{apiKey}/render"),
    ("POST", "/v2/project/{apiKey}/connect"),
    ("POST", "/v2/project/{apiKey}/dial"),
    ("POST", "/v2/project/{apiKey}/captions"),
    ("GET", "/"),
    ("GET", "/sdk/{file}"),
    ("GET", "/demo/{file}"),
    ("POST", "/demo/token"),
];

fn handler(method: &str, path: &str) -> MethodRouter<Arc<AppState>> {
    match (method, path) {
        ("GET", "/healthz") => get(ops::healthz),
        ("GET", "/metrics") => get(ops::metrics),
        ("GET", SIGNALING_PATH) => get(signaling_upgrade),
        ("POST", "/session/create") => post(sessions::create),
        ("POST", "/v2/project/{apiKey}/session/{sessionId}/signal") => post(project::signal_session),
        ("POST", "/v2/project/{apiKey}/session/{sessionId}/connection/{connectionId}/signal") => {
            post(project::signal_connection)
        }
        ("DELETE", "/v2/project/{apiKey}/session/{sessionId}/connection/{connectionId}") => {
            delete(project::force_disconnect)
        }
        ("GET", "/v2/project/{apiKey}/session/{sessionId}/stream") => get(project::list_streams),
        ("GET", "/v2/project/{apiKey}/session/{sessionId}/stream/{streamId}") => get(project::get_stream),
        ("POST", "/v2/project/{apiKey}/session/{sessionId}/stream/{streamId}/mute") => post(project::mute_stream),
        ("POST", "/v2/project/{apiKey}/session/{sessionId}/mute") => post(project::mute_all),
        ("POST", "/v2/project/{apiKey}/archive") => post(project::archive),
        ("POST", "/v2/project/{apiKey}/broadcast") => post(project::broadcast),
        ("POST", "/v2/project/{apiKey}/render") => post(project::render),
        ("POST", "/v2/project/{apiKey}/connect") => post(project::audio_connector),
        ("POST", "/v2/project/{apiKey}/dial") => post(project::dial),
        ("POST", "/v2/project/{apiKey}/captions") => post(project::captions),
        ("GET", "/") => get(web::demo_index),
        ("GET", "/sdk/{file}") => get(web::sdk_file),
        ("GET", "/demo/{file}") => get(web::demo_file),
        ("POST", "/demo/token") => post(web::demo_token),
        _ => unreachable!("ROUTES lists {method} {path} without a handler"),
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    let mut by_path: std::collections::BTreeMap<&str, MethodRouter<Arc<AppState>>> = Default::default();
    for (method, path) in ROUTES {
        let mut h = handler(method, path).fallback(method_not_allowed);
        if crate::http::host::guards(path) {
            h = h.layer(middleware::from_fn_with_state(state.clone(), check_host));
        }
        let merged = match by_path.remove(path) {
            Some(existing) => existing.merge(h),
            None => h,
        };
        by_path.insert(path, merged);
    }
    let mut r = Router::new();
    for (path, mr) in by_path {
        r = r.route(path, mr);
    }
    r.fallback(unknown_route).layer(middleware::from_fn_with_state(state.clone(), count_requests)).with_state(state)
}

/// The `Host` allow-list (see [`crate::http::host`]) on the routes it guards.
async fn check_host(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let host = match req.headers().get(axum::http::header::HOST) {
        // Not visible ASCII: no name this server answers to.
        Some(v) => Some(v.to_str().unwrap_or("").to_owned()),
        None => req.uri().authority().map(|a| a.to_string()),
    };
    if state.hosts.allows(host.as_deref()) {
        return next.run(req).await;
    }
    let host = host.unwrap_or_default();
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        codes::HOST_NOT_ALLOWED,
        format!(
            "this server does not answer to Host {host:?} on browser routes (a guard against DNS rebinding): \
             start it with --allowed-host NAME (UMBRA_ALLOWED_HOSTS, or allowed_hosts in the config file; \
             --allowed-host '*' turns the check off)"
        ),
    )
    .into_response()
}

async fn unknown_route() -> ApiError {
    ApiError::not_found(codes::UNKNOWN_ROUTE, "no such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, codes::METHOD_NOT_ALLOWED, "method not allowed on this endpoint")
}

async fn count_requests(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned());
    let method = req.method().clone();
    let resp = json_errors(next.run(req).await).await;
    let status = resp.status().as_u16();
    let route = route.unwrap_or_else(|| "unmatched".into());
    state.metrics.record_request(&route, status);
    tracing::debug!(%method, route, status, "request");
    resp
}

/// Rejections produced by axum itself (a malformed path segment, a body over the size limit)
/// come as plain text; clients of this API get every error as `{code, message}`.
async fn json_errors(resp: Response) -> Response {
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let text = match axum::body::to_bytes(resp.into_body(), 64 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).into_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let code = if status.is_server_error() { codes::INTERNAL } else { codes::MALFORMED_BODY };
    ApiError::new(status, code, text).into_response()
}

async fn signaling_upgrade(
    State(state): State<Arc<AppState>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        // tungstenite's 128 KiB default buffers would dominate the memory of an idle
        // connection; signaling messages are small, and the buffers grow for the rare large SDP.
        Ok(ws) => ws
            .read_buffer_size(4 * 1024)
            .write_buffer_size(4 * 1024)
            .max_message_size(MAX_MESSAGE_BYTES)
            .on_upgrade(move |socket| crate::signaling::socket::run(state, socket))
            .into_response(),
        Err(e) => ApiError::bad_request(codes::MALFORMED_BODY, format!("signaling needs a WebSocket upgrade: {e}"))
            .into_response(),
    }
}
