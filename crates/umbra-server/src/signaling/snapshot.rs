//! A live session's state as data, for cluster mode: what a node mirrors to Redis so that
//! another node can take the session over (its node died or drains) and resume its clients.
//!
//! What is kept: connections (role, data, resume token, `seq` and the replay buffer), streams,
//! subscriptions. What is not: sockets, signal budgets and the per-token connection counts,
//! which are per node and start afresh on the node that adopts the session.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use umbra_protocol::{Role, StreamInfo, close};

use super::frame::{EventBody, Frame};
use super::hub::Hub;
use super::limits::{SignalBudget, TokenKey};
use super::room::{Conn, Room, Subscription};
use crate::model::Session;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoomSnapshot {
    pub session_id: String,
    pub conns: Vec<ConnSnapshot>,
    pub streams: Vec<StreamInfo>,
    pub subs: Vec<SubSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnSnapshot {
    pub id: String,
    pub role: Role,
    pub data: Option<String>,
    pub layout: Vec<String>,
    pub created_ms: i64,
    pub resume_token: String,
    pub seq: u64,
    /// `(seq, event JSON without its seq)`.
    pub replay: Vec<(u64, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubSnapshot {
    pub subscription_id: String,
    pub stream_id: String,
    pub subscriber: String,
    pub publisher: String,
}

impl Hub {
    /// Sessions with a room on this node, with each room's change counter.
    pub fn live_rooms(&self) -> Vec<(String, u64)> {
        self.rooms_snapshot().into_iter().map(|(id, room)| (id, room.lock().version)).collect()
    }

    /// The state of one session, as [`RoomSnapshot`]; `None` when it has no room here.
    pub fn snapshot(&self, session_id: &str) -> Option<(RoomSnapshot, u64)> {
        let room = self.room(session_id)?;
        let st = room.lock();
        let conns = st
            .conns
            .values()
            .map(|c| ConnSnapshot {
                id: c.id.clone(),
                role: c.role,
                data: c.data.clone(),
                layout: c.layout.clone(),
                created_ms: c.created_ms,
                resume_token: c.resume_token.clone(),
                seq: c.seq,
                replay: c.replay.iter().map(|(s, b)| (*s, b.json().to_owned())).collect(),
            })
            .collect();
        let subs = st
            .subs
            .iter()
            .map(|(id, s)| SubSnapshot {
                subscription_id: id.clone(),
                stream_id: s.stream_id.clone(),
                subscriber: s.subscriber.clone(),
                publisher: s.publisher.clone(),
            })
            .collect();
        let snap = RoomSnapshot { session_id: session_id.to_owned(), conns, streams: st.streams.clone(), subs };
        Some((snap, st.version))
    }

    /// Makes `snapshot` this node's room for `session`, every connection detached and waiting to
    /// be resumed, and asks its publishers to restart their media here. False (and nothing
    /// changes) when the session already has a room on this node.
    pub fn adopt(self: &Arc<Self>, session: Session, snapshot: RoomSnapshot) -> bool {
        let room = {
            let mut rooms = self.rooms_mut();
            if rooms.contains_key(&session.id) || snapshot.conns.is_empty() {
                return false;
            }
            let room = Arc::new(Room::new(session.clone(), self.config.replay));
            {
                let mut st = room.lock();
                let now = Instant::now();
                for c in snapshot.conns {
                    let replay: VecDeque<(u64, EventBody)> =
                        c.replay.into_iter().map(|(s, json)| (s, EventBody::from_trusted_json(json))).collect();
                    let replay_bytes = replay.iter().map(|(_, b)| b.wire_len()).sum();
                    let epoch = self.next_epoch();
                    let conn = Conn {
                        id: c.id.clone(),
                        role: c.role,
                        data: c.data,
                        layout: c.layout,
                        created_ms: c.created_ms,
                        resume_token: c.resume_token,
                        seq: c.seq,
                        replay,
                        replay_bytes,
                        // Per-token counts are per node; an adopted connection counts for none.
                        token: TokenKey::adopted(),
                        subscriptions: 0,
                        signals: SignalBudget::new(&self.config.limits, now),
                        attached: None,
                        detached_epoch: Some(epoch),
                        adopted: true,
                    };
                    st.conns.insert(c.id, conn);
                    self.metrics.connections.fetch_add(1, Relaxed);
                }
                st.streams = snapshot.streams;
                self.metrics.streams.fetch_add(st.streams.len() as i64, Relaxed);
                for s in snapshot.subs {
                    let sub = Subscription { stream_id: s.stream_id, subscriber: s.subscriber, publisher: s.publisher };
                    st.add_subscription(s.subscription_id, sub);
                }
            }
            rooms.insert(session.id.clone(), room.clone());
            self.metrics.live_sessions.fetch_add(1, Relaxed);
            room
        };
        // Whoever does not resume within the window is gone, as after any dropped socket.
        let detached: Vec<_> =
            room.lock().conns.values().filter_map(|c| c.detached_epoch.map(|epoch| (c.id.clone(), epoch))).collect();
        for (connection_id, epoch) in detached {
            self.reap_later(session.id.clone(), connection_id, epoch);
        }
        self.restart_media(&room);
        true
    }

    /// Lets go of a session this node no longer hosts (another node holds it now): its sockets
    /// close with 4004 so their clients resume where the session lives. Nobody is told the
    /// connections ended: they did not. With `drop_media` its peer connections leave the router
    /// now; without (a drain), they keep flowing until their clients replace them.
    pub fn evict(&self, session_id: &str, drop_media: bool) {
        let Some(room) = self.rooms_mut().remove(session_id) else { return };
        self.metrics.live_sessions.fetch_sub(1, Relaxed);
        let mut st = room.lock();
        for (_, mut conn) in std::mem::take(&mut st.conns) {
            conn.send(Frame::Close { code: close::SESSION_MOVED, reason: "the session moved to another node" });
            self.metrics.connections.fetch_sub(1, Relaxed);
            if !conn.adopted {
                self.release_token_slot(conn.token);
            }
            if drop_media && room.session.media_mode == umbra_protocol::MediaMode::Routed {
                self.router.disconnect(session_id, &conn.id);
            }
        }
        self.metrics.streams.fetch_sub(st.streams.len() as i64, Relaxed);
        st.streams.clear();
    }
}
