//! `/v2/project/{apiKey}/…`: signals, force disconnect, streams, mute, and the media features
//! that an end-to-end encrypted session cannot offer.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::{ApiError, codes, json_response};
use crate::clock::now_secs;
use crate::model::{Project, Session};
use crate::project_auth::{self, AuthError};
use crate::server::AppState;
use crate::signaling::hub::{HubError, SignalFailure};
use crate::signaling::protocol::StreamInfo;

/// Verifies `X-OPENTOK-AUTH`; with `path_key`, also that it is that project's.
pub async fn authenticate(state: &AppState, headers: &HeaderMap, path_key: Option<&str>) -> Result<Project, ApiError> {
    let header = headers.get(project_auth::HEADER).map(|v| v.to_str().unwrap_or("\u{0}invalid"));
    let claimed = project_auth::parse(header)?;
    let key = claimed.api_key.clone();
    let project = state.with_store(move |s| s.project(&key)).await?;
    claimed.verify(project.as_ref(), now_secs(), state.clock_skew_secs)?;
    let project = project.expect("verify succeeds only with a project");
    if let Some(path) = path_key
        && path != project.api_key
    {
        return Err(AuthError::ProjectMismatch { token: project.api_key, path: path.to_owned() }.into());
    }
    Ok(project)
}

async fn session_of(state: &AppState, project: &Project, session_id: &str) -> Result<Session, ApiError> {
    let id = session_id.to_owned();
    let session = state.with_store(move |s| s.session(&id)).await?;
    match session {
        Some(s) if s.api_key == project.api_key => Ok(s),
        _ => Err(ApiError::not_found(codes::UNKNOWN_SESSION, format!("project {} has no session {session_id}", project.api_key))),
    }
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(ApiError::bad_request(codes::MALFORMED_BODY, "body must be a JSON object")),
        Err(e) => Err(ApiError::bad_request(codes::MALFORMED_BODY, format!("body is not JSON: {e}"))),
    }
}

fn signal_fields(body: &Value) -> Result<(Option<String>, String), ApiError> {
    let data = match body.get("data") {
        Some(Value::String(s)) => s.clone(),
        None => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "signal needs \"data\" (a string)")),
        Some(_) => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "signal \"data\" must be a string")),
    };
    let kind = match body.get("type") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "signal \"type\" must be a string")),
    };
    Ok((kind, data))
}

fn signal_error(e: SignalFailure) -> ApiError {
    match e {
        SignalFailure::Invalid(m) => ApiError::bad_request(codes::INVALID_PARAMETER, m),
        SignalFailure::Hub(h) => hub_error(h),
    }
}

fn hub_error(e: HubError) -> ApiError {
    match e {
        HubError::UnknownConnection(_) => ApiError::not_found(codes::UNKNOWN_CONNECTION, e.to_string()),
        HubError::UnknownStream(_) => ApiError::not_found(codes::UNKNOWN_STREAM, e.to_string()),
    }
}

pub async fn signal_session(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let (kind, data) = signal_fields(&json_body(&body)?)?;
    state.hub.signal(&session.id, None, None, kind.as_deref(), &data).map_err(signal_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn signal_connection(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id, connection_id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let (kind, data) = signal_fields(&json_body(&body)?)?;
    state.hub.signal(&session.id, None, Some(&connection_id), kind.as_deref(), &data).map_err(signal_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn force_disconnect(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id, connection_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    state.hub.force_disconnect(&session.id, &connection_id).map_err(hub_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// OpenTok's stream object.
fn stream_json(s: &StreamInfo) -> Value {
    json!({
        "id": s.stream_id,
        "connectionId": s.connection_id,
        "videoType": s.video_type,
        "name": s.name,
        "layoutClassList": s.layout_class_list,
        "hasAudio": s.has_audio,
        "hasVideo": s.has_video,
        "e2ee": s.e2ee,
    })
}

pub async fn list_streams(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let items: Vec<Value> = state.hub.streams(&session.id).iter().map(stream_json).collect();
    Ok(json_response(StatusCode::OK, &json!({"count": items.len(), "items": items})))
}

pub async fn get_stream(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id, stream_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let streams = state.hub.streams(&session.id);
    let s = streams
        .iter()
        .find(|s| s.stream_id == stream_id)
        .ok_or_else(|| ApiError::not_found(codes::UNKNOWN_STREAM, format!("no stream {stream_id} in this session")))?;
    Ok(json_response(StatusCode::OK, &stream_json(s)))
}

fn mute_reply(project: &Project, session: &Session, told: usize) -> Response {
    json_response(
        StatusCode::OK,
        &json!({"projectId": project.api_key, "sessionId": session.id, "status": "ACTIVE", "streamsMuted": told}),
    )
}

pub async fn mute_stream(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id, stream_id)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let told = state.hub.mute(&session.id, Some(&stream_id), &[]).map_err(hub_error)?;
    Ok(mute_reply(&project, &session, told))
}

pub async fn mute_all(
    State(state): State<Arc<AppState>>,
    Path((api_key, session_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let project = authenticate(&state, &headers, Some(&api_key)).await?;
    let session = session_of(&state, &project, &session_id).await?;
    let body = json_body(&body)?;
    let excluded: Vec<String> = match body.get("excludedStreamIds") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<_>>()
            .ok_or_else(|| ApiError::bad_request(codes::INVALID_PARAMETER, "excludedStreamIds must be strings"))?,
        Some(_) => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "excludedStreamIds must be an array")),
    };
    match body.get("active") {
        None | Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(mute_reply(&project, &session, 0)),
        Some(_) => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, "active must be true or false")),
    }
    let told = state.hub.mute(&session.id, None, &excluded).map_err(hub_error)?;
    Ok(mute_reply(&project, &session, told))
}

/// A feature that needs decoded media: refused (409) on e2ee sessions, not built yet (501)
/// elsewhere.
async fn media_feature(state: &AppState, api_key: &str, headers: &HeaderMap, body: &[u8], feature: &str) -> Result<Response, ApiError> {
    let project = authenticate(state, headers, Some(api_key)).await?;
    let body = json_body(body)?;
    let session_id = match body.get("sessionId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ApiError::bad_request(codes::INVALID_PARAMETER, format!("{feature} needs \"sessionId\" (a string)"))),
    };
    let session = session_of(state, &project, &session_id).await?;
    if session.e2ee() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::E2EE_FEATURE_REFUSED,
            format!(
                "session {session_id} is end-to-end encrypted: the server cannot decode its media, so {feature} is not possible"
            ),
        ));
    }
    Ok(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        codes::NOT_IMPLEMENTED,
        format!("{feature} is not available on this server yet"),
    )
    .into_response())
}

macro_rules! media_feature_handler {
    ($name:ident, $feature:literal) => {
        pub async fn $name(
            State(state): State<Arc<AppState>>,
            Path(api_key): Path<String>,
            headers: HeaderMap,
            body: Bytes,
        ) -> Result<Response, ApiError> {
            media_feature(&state, &api_key, &headers, &body, $feature).await
        }
    };
}

media_feature_handler!(archive, "archiving");
media_feature_handler!(broadcast, "live streaming broadcast");
media_feature_handler!(render, "Experience Composer");
media_feature_handler!(audio_connector, "Audio Connector");
media_feature_handler!(dial, "SIP interconnect");
media_feature_handler!(captions, "live captions");
