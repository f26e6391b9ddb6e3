//! A client's signaling socket that landed on a node other than its session's: relayed, frame by
//! frame, to the home node's own signaling endpoint.
//!
//! The relay reads nothing but the first message (to find the session) and close codes: the home
//! node authenticates, orders and answers everything, exactly as for a direct socket. When the
//! home node goes away under the relay (its socket ends without a close frame), the client is
//! closed with 4004 and resumes, through the load balancer, wherever the session lives next; when
//! the client's socket drops, the upstream is dropped without a close frame too, so the home node
//! keeps the connection resumable.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Upstream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as UpstreamClose;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use umbra_protocol::{ClientMessage, close};

use super::{Cluster, ClusterError, Route};
use crate::token;

/// How long the home node has to accept the relayed socket.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The session a first message is for, if it names one.
pub fn session_of(first: &ClientMessage) -> Option<String> {
    match first {
        ClientMessage::Connect { token, session_id, .. } => {
            session_id.clone().or_else(|| token::parse(token).ok().and_then(|t| t.session_id))
        }
        ClientMessage::Resume { session_id, .. } => Some(session_id.clone()),
        _ => None,
    }
}

/// How a relay ended.
pub enum Relayed {
    /// The socket was served (and is over).
    Done,
    /// The home node refused the connection before anything was relayed: route again.
    NodeGone,
}

/// Where the socket goes: `Ok(None)` to serve it here.
pub async fn route(cluster: &Cluster, first: &ClientMessage) -> Result<Option<(String, String)>, ClusterError> {
    let Some(session_id) = session_of(first) else { return Ok(None) };
    Ok(match cluster.route(&session_id).await? {
        Route::Local => None,
        Route::Remote { node, url } => Some((node, url)),
    })
}

fn ws_url(http_url: &str) -> String {
    let rest = http_url.strip_prefix("http://").unwrap_or(http_url);
    format!("ws://{}/v1/signaling", rest.trim_end_matches('/'))
}

/// Relays `ws` to `url` (node `node`), sending `first` ahead.
pub async fn run(
    cluster: &Cluster,
    ws: &mut WebSocket,
    node: &str,
    url: &str,
    first: &str,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Relayed {
    let target = ws_url(url);
    // Small buffers, as for the server's own sockets (api/mod.rs): a relayed client costs a
    // socket on each of two nodes, and signaling messages are small.
    let config = WebSocketConfig::default().read_buffer_size(4 * 1024).write_buffer_size(4 * 1024);
    let connect = tokio_tungstenite::connect_async_with_config(target.as_str(), Some(config), true);
    let upstream = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok((u, _))) => u,
        Ok(Err(tokio_tungstenite::tungstenite::Error::Io(e))) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            if let Err(e) = cluster.presume_dead(node, url).await {
                tracing::error!(error = %e, "cannot mark a dead node");
            }
            return Relayed::NodeGone;
        }
        Ok(Err(e)) => {
            tracing::warn!(%node, error = %e, "cannot relay a signaling socket to the session's node");
            close_client(ws, close::SESSION_MOVED, "the session's node is unreachable; resume").await;
            return Relayed::Done;
        }
        Err(_) => {
            tracing::warn!(%node, "the session's node did not accept a relayed socket in time");
            close_client(ws, close::SESSION_MOVED, "the session's node is unreachable; resume").await;
            return Relayed::Done;
        }
    };
    let (mut up_tx, mut up_rx) = upstream.split();
    if up_tx.send(Upstream::text(first)).await.is_err() {
        close_client(ws, close::SESSION_MOVED, "the session's node is gone; resume").await;
        return Relayed::Done;
    }
    loop {
        tokio::select! {
            from_client = ws.recv() => match from_client {
                Some(Ok(Message::Text(t))) => {
                    if up_tx.send(Upstream::text(t.as_str())).await.is_err() {
                        close_client(ws, close::SESSION_MOVED, "the session's node is gone; resume").await;
                        return Relayed::Done;
                    }
                }
                Some(Ok(Message::Binary(b))) => {
                    let _ = up_tx.send(Upstream::binary(b)).await;
                }
                Some(Ok(Message::Close(frame))) => {
                    let frame = frame.map(|f| UpstreamClose { code: CloseCode::from(f.code), reason: f.reason.as_str().into() });
                    let _ = up_tx.send(Upstream::Close(frame)).await;
                    return Relayed::Done;
                }
                Some(Ok(_)) => {}
                // Dropped: let the upstream drop too (no close frame), so the connection stays
                // resumable on its node.
                None | Some(Err(_)) => return Relayed::Done,
            },
            from_home = up_rx.next() => match from_home {
                Some(Ok(Upstream::Text(t))) => {
                    if ws.send(Message::Text(t.as_str().into())).await.is_err() {
                        return Relayed::Done;
                    }
                }
                Some(Ok(Upstream::Close(frame))) => {
                    let (code, reason) = frame.map_or((1000, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                    let _ = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                    return Relayed::Done;
                }
                Some(Ok(_)) => {}
                None | Some(Err(_)) => {
                    close_client(ws, close::SESSION_MOVED, "the session's node is gone; resume").await;
                    return Relayed::Done;
                }
            },
            _ = shutdown.changed() => {
                close_client(ws, close::SESSION_MOVED, "this node is shutting down; resume").await;
                return Relayed::Done;
            }
        }
    }
}

async fn close_client(ws: &mut WebSocket, code: u16, reason: &'static str) {
    let send = ws.send(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
    let _ = tokio::time::timeout(Duration::from_secs(2), send).await;
}
