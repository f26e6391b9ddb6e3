//! One signaling WebSocket: the connect/resume handshake, then a loop that writes hub frames and
//! handles client requests until the socket ends.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio::time::{Instant, timeout, timeout_at};

use super::hub::{CLOSE_SERVER_SHUTDOWN, ConnRef, Frame};
use super::protocol::*;
use crate::clock::now_secs;
use crate::server::AppState;
use crate::token::{self, TokenError};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Frames written before one flush when many are queued.
const WRITE_BATCH: usize = 64;
/// Close code for a refused handshake (bad token, unknown session…); the reason is in the
/// preceding `error` frame.
pub const CLOSE_REFUSED: u16 = 4003;

enum End {
    /// The client left or the server closed the socket on purpose: nothing to resume.
    Final,
    /// The socket dropped: keep the connection for the resume window.
    Dropped,
}

pub async fn run(state: Arc<AppState>, mut ws: WebSocket) {
    let me = match handshake(&state, &mut ws).await {
        Ok(x) => x,
        Err(Some(e)) => {
            state.metrics.connects_refused.fetch_add(1, Relaxed);
            tracing::info!(code = e.code, message = %e.message, "signaling handshake refused");
            let _ = ws.send(Message::Text(error_frame(&Value::Null, &e).into())).await;
            close(&mut ws, CLOSE_REFUSED, "refused").await;
            return;
        }
        Err(None) => return,
    };
    let (me, mut rx) = me;
    tracing::debug!(session = %me.session_id, connection = %me.connection_id, "signaling attached");
    let end = pump(&state, &mut ws, &me, &mut rx).await;
    if let End::Dropped = end {
        state.hub.detach(&me);
    }
}

async fn close(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

type Attached = (ConnRef, tokio::sync::mpsc::Receiver<Frame>);

/// `Err(None)`: the socket went away before saying anything useful.
async fn handshake(state: &AppState, ws: &mut WebSocket) -> Result<Attached, Option<SigError>> {
    let text = loop {
        match timeout(HANDSHAKE_TIMEOUT, ws.recv()).await {
            Err(_) => return Err(Some(SigError::new("handshake_timeout", "send connect or resume within 10 s"))),
            Ok(None | Some(Err(_))) => return Err(None),
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(Message::Close(_)))) => return Err(None),
            Ok(Some(Ok(Message::Binary(_)))) => {
                return Err(Some(SigError::new("bad_request", "messages are JSON text frames")));
            }
            Ok(Some(Ok(_))) => continue,
        }
    };
    let msg = parse(text.as_str()).map_err(|(_, e)| Some(e))?;
    match msg {
        ClientMessage::Connect { v, token, session_id } => {
            check_version(v)?;
            connect(state, &token, session_id).await.map_err(Some)
        }
        ClientMessage::Resume { v, session_id, connection_id, resume_token, last_seq } => {
            check_version(v)?;
            state.hub.resume(&session_id, &connection_id, &resume_token, last_seq).map_err(Some)
        }
        _ => Err(Some(SigError::new("not_connected", "the first message must be connect or resume"))),
    }
}

fn check_version(v: u32) -> Result<(), Option<SigError>> {
    if SUPPORTED_VERSIONS.contains(&v) {
        Ok(())
    } else {
        Err(Some(SigError::new(
            "unsupported_version",
            format!("protocol version {v} is not supported; this server speaks {SUPPORTED_VERSIONS:?}"),
        )))
    }
}

fn token_error(e: TokenError) -> SigError {
    SigError::new(e.slug(), e.to_string())
}

async fn connect(state: &AppState, raw_token: &str, requested: Option<String>) -> Result<Attached, SigError> {
    let unverified = token::parse(raw_token).map_err(token_error)?;
    let api_key = unverified.api_key.clone();
    let session_id = unverified.session_id.clone();
    let (project, session) = state
        .with_store(move |s| {
            let p = s.project(&api_key)?;
            let sess = match &session_id {
                Some(id) => s.session(id)?,
                None => None,
            };
            Ok((p, sess))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "store failed during signaling connect");
            SigError::new("internal", "the server could not read its store; try again")
        })?;
    let grant = unverified
        .verify(requested.as_deref(), project.as_ref(), session.as_ref(), now_secs(), state.clock_skew_secs)
        .map_err(token_error)?;
    let session = session.expect("verify succeeds only with a session");
    Ok(state.hub.join(session, &grant))
}

fn parse(text: &str) -> Result<ClientMessage, (Value, SigError)> {
    let raw: Value = serde_json::from_str(text)
        .map_err(|e| (Value::Null, SigError::new("bad_request", format!("not JSON: {e}"))))?;
    let id = raw.get("id").cloned().unwrap_or(Value::Null);
    if !raw.is_object() || raw.get("type").and_then(Value::as_str).is_none() {
        return Err((id, SigError::new("bad_request", "a message is a JSON object with a string \"type\"")));
    }
    serde_json::from_value(raw).map_err(|e| (id, SigError::new("bad_request", format!("invalid message: {e}"))))
}

async fn pump(
    state: &AppState,
    ws: &mut WebSocket,
    me: &ConnRef,
    rx: &mut tokio::sync::mpsc::Receiver<Frame>,
) -> End {
    let hub = &state.hub;
    let mut shutdown = state.shutdown.clone();
    let mut deadline = Instant::now() + hub.config.heartbeat_timeout;
    loop {
        tokio::select! {
            frame = rx.recv() => {
                let Some(frame) = frame else {
                    // The hub let go of this socket (too slow, or replaced by a resume).
                    return End::Dropped;
                };
                // Under fan-out many frames are queued at once: write them together and flush
                // once, instead of one write system call per frame.
                let mut next = Some(frame);
                let mut batched = 0;
                while let Some(frame) = next.take() {
                    let text = match frame {
                        Frame::Text(t) => t.as_ref().to_owned(),
                        Frame::Event { seq, body } => format!("{{\"seq\":{seq},{}", body.get(1..).unwrap_or("}")),
                        Frame::Close { code, reason } => {
                            let _ = ws.flush().await;
                            close(ws, code, reason).await;
                            return End::Final;
                        }
                    };
                    if ws.feed(Message::Text(text.into())).await.is_err() {
                        return End::Dropped;
                    }
                    batched += 1;
                    if batched < WRITE_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if ws.flush().await.is_err() {
                    return End::Dropped;
                }
            },
            msg = timeout_at(deadline, ws.recv()) => {
                let msg = match msg {
                    Err(_) => {
                        tracing::debug!(connection = %me.connection_id, "heartbeat timeout");
                        return End::Dropped;
                    }
                    Ok(None | Some(Err(_))) => return End::Dropped,
                    Ok(Some(Ok(m))) => m,
                };
                deadline = Instant::now() + hub.config.heartbeat_timeout;
                let text = match msg {
                    Message::Text(t) => t,
                    Message::Close(frame) => {
                        // A normal close (1000/1001) is a departure; anything else may come back.
                        return match frame.map(|f| f.code) {
                            Some(1000 | 1001) => {
                                hub.leave(me);
                                End::Final
                            }
                            _ => End::Dropped,
                        };
                    }
                    Message::Binary(_) => {
                        let e = SigError::new("bad_request", "messages are JSON text frames");
                        if ws.send(Message::Text(error_frame(&Value::Null, &e).into())).await.is_err() {
                            return End::Dropped;
                        }
                        continue;
                    }
                    _ => continue,
                };
                state.metrics.signaling_messages.fetch_add(1, Relaxed);
                let reply = match parse(text.as_str()) {
                    Err((id, e)) => error_frame(&id, &e),
                    Ok(ClientMessage::Leave) => {
                        hub.leave(me);
                        close(ws, 1000, "left").await;
                        return End::Final;
                    }
                    Ok(ClientMessage::Ping { id }) => json!({"type": "pong", "id": id}).to_string(),
                    Ok(msg) => {
                        let id = request_id(&msg);
                        match hub.handle(me, msg).await {
                            Ok(Value::Object(mut fields)) => {
                                fields.insert("type".into(), "ack".into());
                                fields.insert("id".into(), id);
                                Value::Object(fields).to_string()
                            }
                            Ok(_) => json!({"type": "ack", "id": id}).to_string(),
                            Err(e) => error_frame(&id, &e),
                        }
                    }
                };
                if ws.send(Message::Text(reply.into())).await.is_err() {
                    return End::Dropped;
                }
            },
            _ = shutdown.changed() => {
                close(ws, CLOSE_SERVER_SHUTDOWN, "server shutting down").await;
                return End::Final;
            }
        }
    }
}

fn request_id(msg: &ClientMessage) -> Value {
    use ClientMessage::*;
    match msg {
        Publish { id, .. }
        | Unpublish { id, .. }
        | Subscribe { id, .. }
        | Unsubscribe { id, .. }
        | Answer { id, .. }
        | Ice { id, .. }
        | Signal { id, .. }
        | SetStreamProperty { id, .. }
        | ForceDisconnect { id, .. }
        | Ping { id } => id.clone(),
        Connect { .. } | Resume { .. } | Leave => Value::Null,
    }
}
