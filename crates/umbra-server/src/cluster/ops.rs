//! What the REST API asks of a live session (signals, force disconnects, mutes, its streams),
//! carried over Redis pub/sub to the node that hosts the session and answered the same way.
//!
//! Each node listens on its own `ops` channel for requests and its `replies` channel for answers;
//! a request names the channel to answer on and an id the asker waits under, for at most
//! [`OP_TIMEOUT`]. Pub/sub delivers to whoever listens at that moment and keeps nothing, so a
//! request to a node that died in between is answered by the timeout, never twice.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use umbra_protocol::StreamInfo;

use super::{Cluster, ClusterError, keys};
use crate::signaling::{Hub, HubError};

const OP_TIMEOUT: Duration = Duration::from_secs(5);

/// An operation on one live session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    Signal { session_id: String, to: Option<String>, signal_type: Option<String>, data: String },
    ForceDisconnect { session_id: String, connection_id: String },
    Mute { session_id: String, stream_id: Option<String>, excluded: Vec<String> },
    Streams { session_id: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum OpReply {
    Done,
    Muted { streams: usize },
    Streams { streams: Vec<StreamInfo> },
    Refused { error: HubError },
}

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    id: u64,
    reply_to: String,
    op: Op,
}

#[derive(Debug, Serialize, Deserialize)]
struct Reply {
    id: u64,
    reply: OpReply,
}

#[derive(Debug, thiserror::Error)]
pub enum OpError {
    #[error(transparent)]
    Refused(#[from] HubError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("node {0} hosting the session did not answer within {1:?}")]
    Timeout(String, Duration),
}

impl Op {
    fn session_id(&self) -> &str {
        match self {
            Op::Signal { session_id, .. }
            | Op::ForceDisconnect { session_id, .. }
            | Op::Mute { session_id, .. }
            | Op::Streams { session_id } => session_id,
        }
    }

    /// Runs the operation on this node's hub.
    pub fn run_local(&self, hub: &Hub) -> OpReply {
        let done = |r: Result<(), HubError>| match r {
            Ok(()) => OpReply::Done,
            Err(error) => OpReply::Refused { error },
        };
        match self {
            Op::Signal { session_id, to, signal_type, data } => {
                done(hub.signal(session_id, None, to.as_deref(), signal_type.as_deref(), data))
            }
            Op::ForceDisconnect { session_id, connection_id } => done(hub.force_disconnect(session_id, connection_id)),
            Op::Mute { session_id, stream_id, excluded } => {
                match hub.mute(session_id, stream_id.as_deref(), excluded) {
                    Ok(streams) => OpReply::Muted { streams },
                    Err(error) => OpReply::Refused { error },
                }
            }
            Op::Streams { session_id } => OpReply::Streams { streams: hub.streams(session_id) },
        }
    }
}

impl OpReply {
    /// The reply as a result: a refusal becomes the hub's error.
    pub fn into_result(self) -> Result<OpReply, OpError> {
        match self {
            OpReply::Refused { error } => Err(OpError::Refused(error)),
            other => Ok(other),
        }
    }
}

impl Cluster {
    /// Runs `op` on the node hosting its session: here, or over pub/sub. A session live nowhere
    /// is answered here, as a single node answers for a session nobody is connected to.
    pub async fn run(&self, op: Op) -> Result<OpReply, OpError> {
        let home = self.home_of(op.session_id()).await?;
        let node = match home {
            Some((node, _)) if node != self.node_id() => node,
            _ => return op.run_local(&self.hub).into_result(),
        };
        let id = self.next_op.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending().insert(id, tx);
        let request = Request { id, reply_to: keys::replies_channel(self.node_id()), op };
        let json = serde_json::to_string(&request).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        let mut c = self.conn();
        let sent = redis::cmd("PUBLISH").arg(keys::ops_channel(&node)).arg(json).query_async::<i64>(&mut c).await;
        let answer = match sent {
            Ok(_) => tokio::time::timeout(OP_TIMEOUT, rx).await,
            Err(e) => {
                self.pending().remove(&id);
                return Err(ClusterError::from(e).into());
            }
        };
        self.pending().remove(&id);
        match answer {
            Ok(Ok(reply)) => reply.into_result(),
            _ => Err(OpError::Timeout(node, OP_TIMEOUT)),
        }
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<u64, oneshot::Sender<OpReply>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn answer(&self, request: Request) {
        // The session may have moved since the asker looked: answer for where it is now.
        let reply = match self.run(request.op).await {
            Ok(r) => r,
            Err(OpError::Refused(error)) => OpReply::Refused { error },
            Err(e) => {
                tracing::warn!(error = %e, "a forwarded session operation failed");
                return;
            }
        };
        let Ok(json) = serde_json::to_string(&Reply { id: request.id, reply }) else { return };
        let mut c = self.conn();
        let _: Result<i64, _> = redis::cmd("PUBLISH").arg(&request.reply_to).arg(json).query_async(&mut c).await;
    }
}

/// Subscribes this node to its channels and serves them until the cluster is dropped.
pub(super) async fn listen(cluster: &Arc<Cluster>) -> Result<(), ClusterError> {
    let mut pubsub = cluster.client.get_async_pubsub().await?;
    let ops = keys::ops_channel(cluster.node_id());
    let replies = keys::replies_channel(cluster.node_id());
    pubsub.subscribe(&ops).await?;
    pubsub.subscribe(&replies).await?;
    let weak = Arc::downgrade(cluster);
    tokio::spawn(async move {
        let mut messages = pubsub.into_on_message();
        while let Some(msg) = messages.next().await {
            let Some(cluster) = weak.upgrade() else { return };
            let Ok(payload) = msg.get_payload::<String>() else { continue };
            if msg.get_channel_name() == ops {
                match serde_json::from_str::<Request>(&payload) {
                    Ok(request) => {
                        tokio::spawn(async move { cluster.answer(request).await });
                    }
                    Err(e) => tracing::warn!(error = %e, "an operation from another node does not parse"),
                }
            } else if let Ok(reply) = serde_json::from_str::<Reply>(&payload)
                && let Some(tx) = cluster.pending().remove(&reply.id)
            {
                let _ = tx.send(reply.reply);
            }
        }
        tracing::error!(
            "the Redis pub/sub connection ended: REST operations from other nodes no longer reach this one"
        );
    });
    Ok(())
}
