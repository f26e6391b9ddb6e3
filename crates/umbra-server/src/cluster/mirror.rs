//! Mirrors each room this node hosts to Redis, so that another node can take the session over.
//!
//! A room is written when it changed (its `version` moved), at most every [`FLUSH`]: under a
//! burst of events a room costs one write per interval, not one per event. What a node had not
//! written when it died is lost with it; the clients have seen those events already (and resume
//! counts on from their `last_seq`, see `Hub::resume`), or never will.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::Duration;

use super::{Cluster, ClusterError, keys, millis};
use crate::signaling::snapshot::RoomSnapshot;

const FLUSH: Duration = Duration::from_millis(100);
/// Every room is written again this often, changed or not: a Redis that restarted (and lost
/// everything) has every live room back within this time.
const REWRITE_ALL_EVERY: u32 = 100;
/// A mirrored room outlives its node by this much, so a takeover can still read it.
const ROOM_TTL: Duration = Duration::from_secs(120);

impl Cluster {
    /// Writes every room whose version differs from `written`; forgets rooms gone from this node.
    async fn flush(&self, written: &mut HashMap<String, u64>) -> Result<(), ClusterError> {
        let live: HashMap<String, u64> = self.hub.live_rooms().into_iter().collect();
        let mut pipe = redis::pipe();
        let mut dirty = 0;
        for (session_id, version) in &live {
            if written.get(session_id) == Some(version) {
                continue;
            }
            let Some((snap, v)) = self.hub.snapshot(session_id) else { continue };
            let json = serde_json::to_string(&snap).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
            pipe.cmd("SET").arg(keys::room(session_id)).arg(json).arg("PX").arg(millis(ROOM_TTL)).ignore();
            written.insert(session_id.clone(), v);
            dirty += 1;
        }
        let gone: Vec<String> = written.keys().filter(|s| !live.contains_key(*s)).cloned().collect();
        for session_id in &gone {
            written.remove(session_id);
        }
        if dirty > 0 {
            let mut c = self.conn();
            pipe.query_async::<()>(&mut c).await?;
        }
        for session_id in gone {
            // Emptied here (everyone left) unless evicted to another node, which now owns the keys.
            if self.home_of(&session_id).await?.is_some_and(|(h, _)| h == self.node_id()) {
                let mut c = self.conn();
                redis::cmd("DEL").arg(keys::room(&session_id)).query_async::<()>(&mut c).await?;
                self.release_home(&session_id).await?;
            }
        }
        Ok(())
    }

    /// Writes one room now (drain, before handing it over).
    pub(super) async fn flush_room(&self, session_id: &str) -> Result<(), ClusterError> {
        let Some((snap, _)) = self.hub.snapshot(session_id) else { return Ok(()) };
        let json = serde_json::to_string(&snap).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        let mut c = self.conn();
        redis::cmd("SET")
            .arg(keys::room(session_id))
            .arg(json)
            .arg("PX")
            .arg(millis(ROOM_TTL))
            .query_async::<()>(&mut c)
            .await?;
        Ok(())
    }

    /// Makes sure a session whose home is this node has its room here: a session another node
    /// hosted until it died or drained is adopted from its mirrored state.
    pub(super) async fn ensure_room(&self, session_id: &str) -> Result<(), ClusterError> {
        if self.hub.is_live(session_id) {
            return Ok(());
        }
        let mut c = self.conn();
        let json: Option<String> = redis::cmd("GET").arg(keys::room(session_id)).query_async(&mut c).await?;
        let Some(json) = json else { return Ok(()) };
        let snap: RoomSnapshot = serde_json::from_str(&json).map_err(|e| ClusterError::Corrupt(e.to_string()))?;
        let id = session_id.to_owned();
        let store = self.store.clone();
        let session = tokio::task::spawn_blocking(move || store.session(&id))
            .await
            .map_err(|e| ClusterError::Corrupt(e.to_string()))?
            .map_err(|e| ClusterError::Corrupt(format!("store: {e}")))?;
        let Some(session) = session else {
            return Err(ClusterError::Corrupt(format!("session {session_id} is mirrored but not in the store")));
        };
        if self.hub.adopt(session, snap) {
            tracing::info!(session = %session_id, "took the session over");
        }
        Ok(())
    }
}

/// Every [`FLUSH`], the rooms that changed. Ends with the cluster.
pub(super) async fn flush_loop(cluster: Weak<Cluster>) {
    let mut written = HashMap::new();
    let mut tick = tokio::time::interval(FLUSH);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for n in 1u32.. {
        tick.tick().await;
        if n % REWRITE_ALL_EVERY == 0 {
            written.clear();
        }
        let Some(cluster) = cluster.upgrade() else { return };
        if let Err(e) = cluster.flush(&mut written).await {
            tracing::error!(error = %e, "mirroring sessions to Redis failed");
            // Write everything again next time: what failed is unknown.
            written.clear();
        }
    }
}
