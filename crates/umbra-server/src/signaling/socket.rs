//! One signaling WebSocket: the connect/resume handshake, then a loop that writes hub frames and
//! handles client requests until the socket ends.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use serde::Deserialize;
use tokio::time::{Instant, timeout, timeout_at};
use umbra_protocol::{
    ClientMessage, ErrorCode, RequestId, SUPPORTED_VERSIONS, ServerMessage, close, limits, validate_request_id,
};

use super::error::SigError;
use super::frame::Frame;
use super::hub::ConnRef;
use super::limits::TokenKey;
use super::outbox::OutboxRx;
use crate::clock::now_secs;
use crate::cluster::relay;
use crate::state::AppState;
use crate::token;

/// Frames, and bytes, written before one flush when many are queued.
const WRITE_BATCH: usize = 64;
const WRITE_BATCH_BYTES: usize = 256 * 1024;
/// RFC 6455's "the server met an unexpected condition": the handshake failed on the server's
/// side (its store did not answer), which is no refusal of the client; it may connect again.
const CLOSE_SERVER_ERROR: u16 = 1011;

enum End {
    /// The client left or the server closed the socket on purpose: nothing to resume.
    Final,
    /// The socket dropped: keep the connection for the resume window.
    Dropped,
}

/// Why a handshake did not attach the socket.
enum Refusal {
    /// Told to the client with an `error`, then closed with 4003.
    Refused(SigError),
    /// The server failed; closed with 1011.
    ServerFault,
    /// The socket went away before saying anything useful.
    Gone,
}

impl From<SigError> for Refusal {
    fn from(e: SigError) -> Self {
        Refusal::Refused(e)
    }
}

pub async fn run(state: Arc<AppState>, mut ws: WebSocket) {
    let attached = match first_message(&mut ws).await {
        Ok((text, msg)) => match relay_elsewhere(&state, &mut ws, &text, &msg).await {
            Ok(true) => return,
            Ok(false) => handshake(&state, msg).await,
            Err(r) => Err(r),
        },
        Err(r) => Err(r),
    };
    let (me, mut rx) = match attached {
        Ok(attached) => attached,
        Err(Refusal::Refused(e)) => {
            state.metrics.connects_refused.fetch_add(1, Relaxed);
            tracing::info!(code = %e.code, message = %e.message, "signaling handshake refused");
            let write_timeout = state.hub.config.write_timeout;
            let refuse = async {
                let _ = ws.send(text(&e.to_message(None))).await;
                close_socket(&mut ws, close::HANDSHAKE_REFUSED, "refused").await;
            };
            let _ = timeout(write_timeout, refuse).await;
            return;
        }
        Err(Refusal::ServerFault) => {
            let write_timeout = state.hub.config.write_timeout;
            let _ = timeout(write_timeout, close_socket(&mut ws, CLOSE_SERVER_ERROR, "server error; try again")).await;
            return;
        }
        Err(Refusal::Gone) => return,
    };
    tracing::debug!(session = %me.session_id, connection = %me.connection_id, "signaling attached");
    let end = pump(&state, &mut ws, &me, &mut rx).await;
    // Frees what is still queued before the resume window starts, not when it ends.
    drop(rx);
    if let End::Dropped = end {
        state.hub.detach(&me);
    }
}

fn text(m: &ServerMessage) -> Message {
    Message::Text(m.to_json().into())
}

async fn close_socket(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

type Attached = (ConnRef, OutboxRx);

/// Cluster mode: serves the socket by relaying it to the node hosting its session, when that is
/// another node. `Ok(true)` when it was (and is over).
async fn relay_elsewhere(
    state: &AppState,
    ws: &mut WebSocket,
    text: &str,
    msg: &ClientMessage,
) -> Result<bool, Refusal> {
    let Some(cluster) = &state.cluster else { return Ok(false) };
    // A node found dead is marked so, and the session placed again: at most a few hops.
    for _ in 0..3 {
        let route = relay::route(cluster, msg).await.map_err(|e| {
            tracing::error!(error = %e, "cluster routing failed during a signaling handshake");
            Refusal::ServerFault
        })?;
        let Some((node, url)) = route else { return Ok(false) };
        match relay::run(cluster, ws, &node, &url, text, state.shutdown.clone()).await {
            relay::Relayed::Done => return Ok(true),
            relay::Relayed::NodeGone => continue,
        }
    }
    Err(Refusal::ServerFault)
}

/// The first message of a socket, as text and parsed.
async fn first_message(ws: &mut WebSocket) -> Result<(String, ClientMessage), Refusal> {
    let within = Duration::from_millis(limits::HANDSHAKE_TIMEOUT_MS);
    let text = loop {
        match timeout(within, ws.recv()).await {
            Err(_) => {
                let message = format!("send connect or resume within {} s", within.as_secs());
                return Err(SigError::new(ErrorCode::HandshakeTimeout, message).into());
            }
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return Err(Refusal::Gone),
            Ok(Some(Ok(Message::Text(t)))) => break t,
            Ok(Some(Ok(Message::Binary(_)))) => return Err(binary_refused().into()),
            Ok(Some(Ok(_))) => continue,
        }
    };
    let msg = parse(text.as_str()).map_err(|(_, e)| e)?;
    Ok((text.as_str().to_owned(), msg))
}

async fn handshake(state: &AppState, msg: ClientMessage) -> Result<Attached, Refusal> {
    match msg {
        ClientMessage::Connect { v, token, session_id } => {
            check_version(v)?;
            connect(state, &token, session_id).await
        }
        ClientMessage::Resume { v, session_id, connection_id, resume_token, last_seq } => {
            check_version(v)?;
            Ok(state.hub.resume(&session_id, &connection_id, &resume_token, last_seq)?)
        }
        _ => Err(SigError::new(ErrorCode::NotConnected, "the first message must be connect or resume").into()),
    }
}

fn binary_refused() -> SigError {
    SigError::bad_request("messages are JSON text frames")
}

fn check_version(v: u32) -> Result<(), SigError> {
    if SUPPORTED_VERSIONS.contains(&v) {
        return Ok(());
    }
    let message = format!("protocol version {v} is not supported; this server speaks {SUPPORTED_VERSIONS:?}");
    Err(SigError::new(ErrorCode::UnsupportedVersion, message))
}

async fn connect(state: &AppState, raw_token: &str, requested: Option<String>) -> Result<Attached, Refusal> {
    let unverified = token::parse(raw_token).map_err(SigError::from)?;
    let api_key = unverified.api_key.clone();
    let session_id = unverified.session_id.clone();
    let (project, session) = state
        .with_store(move |s| {
            let session = match &session_id {
                Some(id) => s.session(id)?,
                None => None,
            };
            Ok((s.project(&api_key)?, session))
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "store failed during signaling connect");
            Refusal::ServerFault
        })?;
    let grant = unverified
        .verify(requested.as_deref(), project.as_ref(), session.as_ref(), now_secs(), state.clock_skew_secs)
        .map_err(SigError::from)?;
    let Some(session) = session else {
        // `verify` succeeds only with a session; should that change, refuse rather than panic.
        return Err(Refusal::ServerFault);
    };
    // The layout classes are copied into every stream the connection publishes.
    if grant.initial_layout_class_list.iter().map(|c| c.len() + 1).sum::<usize>() > limits::MAX_CONNECTION_DATA {
        let message = format!("initial_layout_class_list over {} bytes", limits::MAX_CONNECTION_DATA);
        return Err(SigError::new(ErrorCode::TokenConnectionDataTooLong, message).into());
    }
    Ok(state.hub.join(session, &grant, TokenKey::of(raw_token))?)
}

/// Only the `id` of a message, to answer one that is not a valid message.
#[derive(Deserialize)]
struct IdOnly {
    id: Option<RequestId>,
}

/// A client message, or the refusal to send (with the request's id when it has a usable one).
fn parse(text: &str) -> Result<ClientMessage, (Option<RequestId>, SigError)> {
    let msg: ClientMessage = serde_json::from_str(text).map_err(|e| {
        let id =
            serde_json::from_str::<IdOnly>(text).ok().and_then(|m| m.id).filter(|id| validate_request_id(id).is_ok());
        let message = if e.is_syntax() || e.is_eof() {
            format!("not JSON: {e}")
        } else {
            format!("invalid message (a JSON object with a known \"type\" and its fields): {e}")
        };
        (id, SigError::bad_request(message))
    })?;
    if let Some(Err(e)) = msg.id().map(validate_request_id) {
        return Err((None, SigError::bad_request(e)));
    }
    Ok(msg)
}

async fn pump(state: &AppState, ws: &mut WebSocket, me: &ConnRef, rx: &mut OutboxRx) -> End {
    let hub = &state.hub;
    let write_timeout = hub.config.write_timeout;
    let mut shutdown = state.shutdown.clone();
    let mut deadline = Instant::now() + hub.config.heartbeat_timeout;
    loop {
        tokio::select! {
            frame = rx.recv() => {
                // `None`: the hub let go of this socket (too slow, or replaced by a resume).
                let Some(frame) = frame else { return End::Dropped };
                let cut = rx.cut_signal();
                let written = tokio::select! {
                    w = timeout(write_timeout, write_frames(ws, frame, rx)) => w,
                    () = cut => return End::Dropped,
                };
                match written {
                    Ok(None) => {}
                    Ok(Some(end)) => return end,
                    Err(_) => return write_timed_out(state, me),
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
                let reply = match msg {
                    Message::Text(t) => {
                        state.metrics.signaling_messages.fetch_add(1, Relaxed);
                        match parse(t.as_str()) {
                            Err((id, e)) => e.to_message(id),
                            Ok(ClientMessage::Leave) => {
                                hub.leave(me);
                                let _ = timeout(write_timeout, close_socket(ws, 1000, "left")).await;
                                return End::Final;
                            }
                            Ok(ClientMessage::Ping { id }) => ServerMessage::Pong { id },
                            Ok(msg) => {
                                let id = msg.id().cloned();
                                match hub.handle(me, msg).await {
                                    Ok(body) => ServerMessage::Ack { id, body },
                                    Err(e) => e.to_message(id),
                                }
                            }
                        }
                    }
                    // A normal close (1000/1001) is a departure; anything else may come back.
                    Message::Close(frame) => {
                        return match frame.map(|f| f.code) {
                            Some(1000 | 1001) => {
                                hub.leave(me);
                                End::Final
                            }
                            _ => End::Dropped,
                        };
                    }
                    Message::Binary(_) => binary_refused().to_message(None),
                    _ => continue,
                };
                // A client that sends requests and never reads the replies is a reader too slow.
                match timeout(write_timeout, ws.send(text(&reply))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return End::Dropped,
                    Err(_) => return write_timed_out(state, me),
                }
            },
            _ = shutdown.changed() => {
                // In a cluster the session lives on: its client resumes on another node.
                let (code, reason) = match state.cluster {
                    Some(_) => (close::SESSION_MOVED, "this node is shutting down; resume"),
                    None => (close::SERVER_SHUTDOWN, "server shutting down"),
                };
                let _ = timeout(write_timeout, close_socket(ws, code, reason)).await;
                return End::Final;
            }
        }
    }
}

fn write_timed_out(state: &AppState, me: &ConnRef) -> End {
    state.metrics.signaling_slow_sockets_dropped.fetch_add(1, Relaxed);
    tracing::info!(connection = %me.connection_id, "signaling write timed out; socket dropped (resumable)");
    End::Dropped
}

/// Writes `first` and whatever else is queued (up to a batch), flushing once: under fan-out many
/// frames are queued at once, and one write system call per frame would cost more than the rest.
/// `Some` when the socket ends.
async fn write_frames(ws: &mut WebSocket, first: Frame, rx: &mut OutboxRx) -> Option<End> {
    let mut next = Some(first);
    let (mut frames, mut bytes) = (0, 0);
    while let Some(frame) = next.take() {
        let text = match frame {
            Frame::Text(t) => t.as_ref().to_owned(),
            Frame::Event { seq, body } => body.with_seq(seq),
            Frame::Close { code, reason } => {
                let _ = ws.flush().await;
                close_socket(ws, code, reason).await;
                return Some(End::Final);
            }
        };
        bytes += text.len();
        if ws.feed(Message::Text(text.into())).await.is_err() {
            return Some(End::Dropped);
        }
        frames += 1;
        if frames < WRITE_BATCH && bytes < WRITE_BATCH_BYTES {
            next = rx.try_recv();
        }
    }
    if ws.flush().await.is_err() {
        return Some(End::Dropped);
    }
    None
}
