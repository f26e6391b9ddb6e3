//! `/v2/project/{apiKey}/…`: signals, force disconnect, streams, mute, and the media features
//! that an end-to-end encrypted session cannot offer.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use umbra_protocol::StreamInfo;

use super::auth::{AuthedProject, ProjectSession};
use super::body::{self, Limited};
use super::error::{ApiError, codes, json_response};
use crate::cluster::OpError;
use crate::cluster::ops::{Op, OpReply};
use crate::model::{Project, Session};
use crate::signaling::HubError;
use crate::state::AppState;

/// The session a request body names, if it is this project's.
async fn session_of(state: &AppState, project: &Project, session_id: &str) -> Result<Session, ApiError> {
    let id = session_id.to_owned();
    match state.with_store(move |s| s.session(&id)).await? {
        Some(s) if s.api_key == project.api_key => Ok(s),
        _ => Err(ApiError::not_found(
            codes::UNKNOWN_SESSION,
            format!("project {} has no session {session_id}", project.api_key),
        )),
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

fn op_error(e: OpError) -> ApiError {
    match e {
        OpError::Refused(e @ HubError::UnknownConnection(_)) => {
            ApiError::not_found(codes::UNKNOWN_CONNECTION, e.to_string())
        }
        OpError::Refused(e @ HubError::UnknownStream(_)) => ApiError::not_found(codes::UNKNOWN_STREAM, e.to_string()),
        OpError::Refused(HubError::InvalidSignal(m)) => ApiError::bad_request(codes::INVALID_PARAMETER, m),
        // Cluster mode: Redis or the session's node failed; the request may be repeated.
        e @ (OpError::Cluster(_) | OpError::Timeout(..)) => {
            tracing::error!(error = %e, "a session operation did not reach the session's node");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, codes::INTERNAL, e.to_string())
        }
    }
}

/// The streams of a live session, wherever it lives.
async fn streams_of(state: &AppState, session_id: &str) -> Result<Vec<StreamInfo>, ApiError> {
    match state.session_op(Op::Streams { session_id: session_id.to_owned() }).await.map_err(op_error)? {
        OpReply::Streams { streams } => Ok(streams),
        _ => Ok(Vec::new()),
    }
}

async fn mute(
    state: &AppState,
    session_id: &str,
    stream_id: Option<String>,
    excluded: Vec<String>,
) -> Result<usize, ApiError> {
    let op = Op::Mute { session_id: session_id.to_owned(), stream_id, excluded };
    match state.session_op(op).await.map_err(op_error)? {
        OpReply::Muted { streams } => Ok(streams),
        _ => Ok(0),
    }
}

pub async fn signal_session(
    State(state): State<Arc<AppState>>,
    ProjectSession { session, .. }: ProjectSession,
    Limited(body): Limited<{ body::SIGNAL }>,
) -> Result<StatusCode, ApiError> {
    let (kind, data) = signal_fields(&json_body(&body)?)?;
    let op = Op::Signal { session_id: session.id.clone(), to: None, signal_type: kind, data };
    state.session_op(op).await.map_err(op_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn signal_connection(
    State(state): State<Arc<AppState>>,
    ProjectSession { session, .. }: ProjectSession,
    Path((_, _, connection_id)): Path<(String, String, String)>,
    Limited(body): Limited<{ body::SIGNAL }>,
) -> Result<StatusCode, ApiError> {
    let (kind, data) = signal_fields(&json_body(&body)?)?;
    let op = Op::Signal { session_id: session.id.clone(), to: Some(connection_id), signal_type: kind, data };
    state.session_op(op).await.map_err(op_error)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn force_disconnect(
    State(state): State<Arc<AppState>>,
    ProjectSession { session, .. }: ProjectSession,
    Path((_, _, connection_id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let op = Op::ForceDisconnect { session_id: session.id.clone(), connection_id };
    state.session_op(op).await.map_err(op_error)?;
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
    ProjectSession { session, .. }: ProjectSession,
) -> Result<Response, ApiError> {
    let items: Vec<Value> = streams_of(&state, &session.id).await?.iter().map(stream_json).collect();
    Ok(json_response(StatusCode::OK, &json!({"count": items.len(), "items": items})))
}

pub async fn get_stream(
    State(state): State<Arc<AppState>>,
    ProjectSession { session, .. }: ProjectSession,
    Path((_, _, stream_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let streams = streams_of(&state, &session.id).await?;
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
    ProjectSession { project, session }: ProjectSession,
    Path((_, _, stream_id)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let told = mute(&state, &session.id, Some(stream_id), Vec::new()).await?;
    Ok(mute_reply(&project, &session, told))
}

pub async fn mute_all(
    State(state): State<Arc<AppState>>,
    ProjectSession { project, session }: ProjectSession,
    Limited(body): Limited<{ body::MUTE }>,
) -> Result<Response, ApiError> {
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
    let told = mute(&state, &session.id, None, excluded).await?;
    Ok(mute_reply(&project, &session, told))
}

/// A feature that needs decoded media: refused (409) on e2ee sessions, not built yet (501)
/// elsewhere.
async fn media_feature(state: &AppState, project: &Project, body: &[u8], feature: &str) -> Result<Response, ApiError> {
    let body = json_body(body)?;
    let session_id = match body.get("sessionId") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => {
            return Err(ApiError::bad_request(
                codes::INVALID_PARAMETER,
                format!("{feature} needs \"sessionId\" (a string)"),
            ));
        }
    };
    let session = session_of(state, project, &session_id).await?;
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
            AuthedProject(project): AuthedProject,
            Limited(body): Limited<{ body::MEDIA_FEATURE }>,
        ) -> Result<Response, ApiError> {
            media_feature(&state, &project, &body, $feature).await
        }
    };
}

media_feature_handler!(archive, "archiving");
media_feature_handler!(broadcast, "live streaming broadcast");
media_feature_handler!(render, "Experience Composer");
media_feature_handler!(audio_connector, "Audio Connector");
media_feature_handler!(dial, "SIP interconnect");
media_feature_handler!(captions, "live captions");
