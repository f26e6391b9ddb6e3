//! A node leaving the cluster on purpose (SIGTERM): its sessions move before it goes.
//!
//! The node stops taking sessions (its record says `draining`), writes each room's state, hands
//! its home key to the least-loaded other node, and closes the room's sockets with 4004. Its
//! clients resume on the new home, which adopts the room and asks for new peer connections; the
//! old ones keep flowing through this node's router meanwhile, for [`MEDIA_OVERLAP`], so what a
//! client notices is the switch from one peer connection to the next, not a gap.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use super::{Cluster, ClusterError};

/// How long the router keeps forwarding after the sessions moved.
pub const MEDIA_OVERLAP: Duration = Duration::from_secs(5);

impl Cluster {
    /// Moves every session this node hosts to other nodes. With no other node, the sessions stay
    /// (and end with the process, as on a single node).
    pub async fn drain(&self) -> Result<usize, ClusterError> {
        self.draining.store(true, Relaxed);
        self.announce().await?;
        let rooms = self.hub.live_rooms();
        let mut moved = 0;
        for (session_id, _) in rooms {
            let successor = match self.least_loaded(Some(self.node_id())).await {
                Ok(n) => n,
                Err(ClusterError::NoNode) => {
                    tracing::warn!(session = %session_id, "no other node to move the session to");
                    continue;
                }
                Err(e) => return Err(e),
            };
            self.flush_room(&session_id).await?;
            self.hand_over(&session_id, &successor).await?;
            self.hub.evict(&session_id, false);
            tracing::info!(session = %session_id, %successor, "session handed over");
            moved += 1;
        }
        if moved > 0 {
            tokio::time::sleep(MEDIA_OVERLAP).await;
        }
        Ok(moved)
    }
}
