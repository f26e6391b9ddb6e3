//! Cluster mode (`umbra serve --redis redis://…`): several nodes on one PostgreSQL store and one
//! Redis, a client's sockets on any of them, each session's signaling and media on one.
//!
//! What lives where:
//! - **PostgreSQL**: projects and sessions, as in a single node.
//! - **Redis** (`keys`): each node's presence and load (a key with a 5 s expiry, refreshed every
//!   second); each live session's home node (same expiry, refreshed by that node); each live
//!   session's state (`signaling::snapshot`), mirrored at most every 100 ms; two pub/sub channels
//!   per node for REST operations on sessions it hosts (`ops`).
//! - **Memory** of the home node: the session's room (sockets, outboxes) and its router's peer
//!   connections.
//!
//! A session's home is chosen when its first client arrives: the live, non-draining node with the
//! fewest connections (`placement`). A client's socket that lands elsewhere is relayed to the home
//! node (`relay`), so one node orders a session's events and answers its media. When the home node
//! dies, the next socket for the session (its clients resume at once) finds the node gone and a
//! live node takes the session over from its mirrored state (`Hub::adopt`), asking every publisher
//! and then every subscriber to renegotiate on its own router (`media_restart`). SIGTERM drains
//! (`drain`): the node hands each session to another node, then closes its sockets with 4004.

mod drain;
mod keys;
mod mirror;
pub mod ops;
mod placement;
pub mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::oneshot;

pub use ops::OpError;
pub use placement::Route;

use crate::signaling::Hub;
use crate::store::Store;

/// How often a node refreshes its presence and the home keys of its sessions.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long a node, or a session's home, lives in Redis without a refresh.
const PRESENCE_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// `redis://host:port[/db]`.
    pub redis_url: String,
    /// Unique per node; default: a random id.
    pub node_id: String,
    /// Where other nodes reach this node's HTTP listener (its signaling endpoint), e.g.
    /// `http://10.0.0.5:8080`.
    pub url: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("cluster state in Redis does not parse: {0}")]
    Corrupt(String),
    #[error("no live node can take the session")]
    NoNode,
}

pub struct Cluster {
    pub options: ClusterOptions,
    redis: ConnectionManager,
    client: redis::Client,
    hub: Arc<Hub>,
    store: Arc<dyn Store>,
    draining: AtomicBool,
    pending: std::sync::Mutex<std::collections::HashMap<u64, oneshot::Sender<ops::OpReply>>>,
    next_op: AtomicU64,
}

impl Cluster {
    /// Connects to Redis and starts this node's heartbeat, mirror and operation listener.
    pub async fn start(
        options: ClusterOptions,
        hub: Arc<Hub>,
        store: Arc<dyn Store>,
    ) -> Result<Arc<Self>, ClusterError> {
        let client = redis::Client::open(options.redis_url.as_str())?;
        let redis = ConnectionManager::new(client.clone()).await?;
        let cluster = Arc::new(Self {
            options,
            redis,
            client,
            hub,
            store,
            draining: AtomicBool::new(false),
            pending: Default::default(),
            next_op: AtomicU64::new(1),
        });
        cluster.announce().await?;
        ops::listen(&cluster).await?;
        tokio::spawn(placement::heartbeat_loop(Arc::downgrade(&cluster)));
        tokio::spawn(mirror::flush_loop(Arc::downgrade(&cluster)));
        tracing::info!(node = %cluster.options.node_id, url = %cluster.options.url, "cluster mode: joined");
        Ok(cluster)
    }

    pub fn node_id(&self) -> &str {
        &self.options.node_id
    }

    fn conn(&self) -> ConnectionManager {
        self.redis.clone()
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
