//! Which node hosts a session, and every node's presence and load.
//!
//! # Invariant
//!
//! A session's home key names at most one node, and only that node holds a room for the
//! session (`Hub`): a node refreshes only the home keys that name it (a compare-and-expire
//! script), and one that finds its key gone to another node evicts its room at the next
//! heartbeat (within a second). A home key is set only where none is (`SET NX`), or replaced
//! only while it still names the dead node it is replacing (compare-and-set), so two nodes never
//! both take a session over.

use std::sync::Weak;
use std::sync::atomic::Ordering::Relaxed;

use serde::{Deserialize, Serialize};

use super::{Cluster, ClusterError, HEARTBEAT, PRESENCE_TTL, keys, millis};

/// What a node publishes about itself every heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub url: String,
    /// Signaling connections it hosts (its sessions' rooms).
    pub load: u64,
    /// Shutting down: hosts no new session.
    pub draining: bool,
}

/// Where a socket for a session is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// This node hosts the session (its room is here, adopted if it was another node's).
    Local,
    /// Another node does: relay the socket there.
    Remote { node: String, url: String },
}

/// Refreshes `KEYS[1]` for `ARGV[2]` ms if it names `ARGV[1]`; claims it if nobody holds it.
/// Returns 1 if the key is (now) this node's, 0 if another node holds it.
const REFRESH_HOME: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0";

/// Replaces `KEYS[1]` by `ARGV[2]` only while it still names the dead node `ARGV[1]`.
const REPLACE_HOME: &str = r"
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] or not v then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end
return 0";

/// Deletes `KEYS[1]` only if it names `ARGV[1]`.
const RELEASE_HOME: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0";

impl Cluster {
    /// Publishes this node's presence and load.
    pub(super) async fn announce(&self) -> Result<(), ClusterError> {
        let record = NodeRecord {
            url: self.options.url.clone(),
            load: u64::try_from(self.hub.metrics.connections.load(Relaxed)).unwrap_or(0),
            draining: self.draining.load(Relaxed),
        };
        let json = serde_json::to_string(&record).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        let mut c = self.conn();
        redis::pipe()
            .cmd("SET")
            .arg(keys::node(self.node_id()))
            .arg(json)
            .arg("PX")
            .arg(millis(PRESENCE_TTL))
            .ignore()
            .cmd("SADD")
            .arg(keys::NODES)
            .arg(self.node_id())
            .ignore()
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    pub(super) async fn node_record(&self, id: &str) -> Result<Option<NodeRecord>, ClusterError> {
        let mut c = self.conn();
        let json: Option<String> = redis::cmd("GET").arg(keys::node(id)).query_async(&mut c).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|e| ClusterError::Corrupt(e.to_string()))).transpose()
    }

    /// Live nodes and their records.
    pub async fn nodes(&self) -> Result<Vec<(String, NodeRecord)>, ClusterError> {
        let mut c = self.conn();
        let ids: Vec<String> = redis::cmd("SMEMBERS").arg(keys::NODES).query_async(&mut c).await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let node_keys: Vec<String> = ids.iter().map(|id| keys::node(id)).collect();
        let records: Vec<Option<String>> = redis::cmd("MGET").arg(&node_keys).query_async(&mut c).await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (id, r) in ids.into_iter().zip(records) {
            match r.map(|j| serde_json::from_str::<NodeRecord>(&j)) {
                Some(Ok(rec)) => live.push((id, rec)),
                Some(Err(e)) => return Err(ClusterError::Corrupt(e.to_string())),
                None => dead.push(id),
            }
        }
        if !dead.is_empty() {
            // Forgotten lazily: a node that comes back announces itself again.
            let _: Result<(), _> = redis::cmd("SREM").arg(keys::NODES).arg(&dead).query_async(&mut c).await;
        }
        Ok(live)
    }

    /// The live, non-draining node with the fewest connections (ties: the smallest id).
    pub(super) async fn least_loaded(&self, excluding: Option<&str>) -> Result<String, ClusterError> {
        self.nodes()
            .await?
            .into_iter()
            .filter(|(id, r)| !r.draining && Some(id.as_str()) != excluding)
            .min_by(|(a, ra), (b, rb)| ra.load.cmp(&rb.load).then_with(|| a.cmp(b)))
            .map(|(id, _)| id)
            .ok_or(ClusterError::NoNode)
    }

    /// Where a socket for `session_id` is served: finds or chooses its home, takes the session
    /// over if its home node is gone, and adopts its mirrored state when the home is this node.
    pub async fn route(&self, session_id: &str) -> Result<Route, ClusterError> {
        let home_key = keys::home(session_id);
        for _ in 0..5 {
            let mut c = self.conn();
            let home: Option<String> = redis::cmd("GET").arg(&home_key).query_async(&mut c).await?;
            match home {
                Some(h) if h == self.node_id() => {
                    self.ensure_room(session_id).await?;
                    return Ok(Route::Local);
                }
                Some(h) => match self.node_record(&h).await? {
                    Some(rec) => return Ok(Route::Remote { node: h, url: rec.url }),
                    None => {
                        let successor = self.least_loaded(Some(&h)).await?;
                        tracing::warn!(session = %session_id, dead = %h, %successor, "session's node is gone: moving the session");
                        redis::Script::new(REPLACE_HOME)
                            .key(&home_key)
                            .arg(&h)
                            .arg(&successor)
                            .arg(millis(PRESENCE_TTL))
                            .invoke_async::<i64>(&mut c)
                            .await?;
                    }
                },
                None => {
                    let choice = self.least_loaded(None).await?;
                    redis::cmd("SET")
                        .arg(&home_key)
                        .arg(&choice)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(PRESENCE_TTL))
                        .query_async::<Option<String>>(&mut c)
                        .await?;
                }
            }
        }
        Err(ClusterError::NoNode)
    }

    /// The node hosting `session_id` now, without choosing one: `None` when the session has no
    /// live room anywhere.
    pub async fn home_of(&self, session_id: &str) -> Result<Option<(String, String)>, ClusterError> {
        let mut c = self.conn();
        let home: Option<String> = redis::cmd("GET").arg(keys::home(session_id)).query_async(&mut c).await?;
        let Some(h) = home else { return Ok(None) };
        if h == self.node_id() {
            return Ok(Some((h, self.options.url.clone())));
        }
        Ok(self.node_record(&h).await?.map(|r| (h, r.url)))
    }

    /// A relay could not reach `node` at all (connection refused): its process is gone, so its
    /// presence goes now rather than when the key expires, and its sessions move at once.
    pub async fn presume_dead(&self, node: &str, url: &str) -> Result<(), ClusterError> {
        if node == self.node_id() {
            return Ok(());
        }
        if self.node_record(node).await?.is_some_and(|r| r.url == url) {
            tracing::warn!(%node, %url, "cluster node refuses connections: presumed dead");
            let mut c = self.conn();
            redis::cmd("DEL").arg(keys::node(node)).query_async::<()>(&mut c).await?;
        }
        Ok(())
    }

    /// Gives up the home key of a session that has no room here any more.
    pub(super) async fn release_home(&self, session_id: &str) -> Result<(), ClusterError> {
        let mut c = self.conn();
        redis::Script::new(RELEASE_HOME)
            .key(keys::home(session_id))
            .arg(self.node_id())
            .invoke_async::<i64>(&mut c)
            .await?;
        Ok(())
    }

    /// Hands a session this node hosts to `successor` (drain).
    pub(super) async fn hand_over(&self, session_id: &str, successor: &str) -> Result<(), ClusterError> {
        let mut c = self.conn();
        redis::Script::new(REPLACE_HOME)
            .key(keys::home(session_id))
            .arg(self.node_id())
            .arg(successor)
            .arg(millis(PRESENCE_TTL))
            .invoke_async::<i64>(&mut c)
            .await?;
        Ok(())
    }

    /// Refreshes the home keys of this node's rooms; evicts rooms whose key another node holds.
    async fn refresh_homes(&self) -> Result<(), ClusterError> {
        let rooms = self.hub.live_rooms();
        let mut c = self.conn();
        let script = redis::Script::new(REFRESH_HOME);
        for (session_id, _) in rooms {
            let mine: i64 = script
                .key(keys::home(&session_id))
                .arg(self.node_id())
                .arg(millis(PRESENCE_TTL))
                .invoke_async(&mut c)
                .await?;
            if mine == 0 {
                tracing::warn!(session = %session_id, "another node holds this session now: letting go of it here");
                self.hub.evict(&session_id, true);
            }
        }
        Ok(())
    }
}

/// Every [`HEARTBEAT`]: presence, load and home keys. Ends with the cluster.
pub(super) async fn heartbeat_loop(cluster: Weak<Cluster>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(cluster) = cluster.upgrade() else { return };
        if let Err(e) = cluster.announce().await {
            tracing::error!(error = %e, "cluster heartbeat failed");
            continue;
        }
        if let Err(e) = cluster.refresh_homes().await {
            tracing::error!(error = %e, "refreshing session homes failed");
        }
        drop(cluster);
    }
}
