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
use umbra_protocol::{Role, StreamInfo, VideoPreference, close};

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
    /// Absent in what a node of an earlier version mirrored.
    #[serde(default)]
    pub preference: VideoPreference,
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
                preference: s.preference,
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
            let mut rooms = self.rooms();
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
                        adopted: Some(c.seq),
                        token_slot: false,
                    };
                    st.conns.insert(c.id, conn);
                    self.metrics.connections.fetch_add(1, Relaxed);
                }
                st.streams = snapshot.streams;
                self.metrics.streams.fetch_add(st.streams.len() as i64, Relaxed);
                for s in snapshot.subs {
                    let sub = Subscription {
                        stream_id: s.stream_id,
                        subscriber: s.subscriber,
                        publisher: s.publisher,
                        preference: s.preference,
                    };
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
        let Some(room) = self.rooms().remove(session_id) else { return };
        self.metrics.live_sessions.fetch_sub(1, Relaxed);
        let mut st = room.lock();
        for (_, mut conn) in std::mem::take(&mut st.conns) {
            conn.send(Frame::Close { code: close::SESSION_MOVED, reason: "the session moved to another node" });
            self.metrics.connections.fetch_sub(1, Relaxed);
            if conn.token_slot {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::Value;
    use umbra_protocol::{ArchiveMode, MediaMode};

    use super::*;
    use crate::media_router::NoMediaRouter;
    use crate::metrics::Metrics;
    use crate::signaling::HubConfig;
    use crate::signaling::outbox::OutboxRx;
    use crate::token::{Grant, TokenFormat};

    fn session() -> Session {
        Session {
            id: "1_s".into(),
            api_key: "12345678".into(),
            media_mode: MediaMode::Relayed,
            archive_mode: ArchiveMode::Manual,
            location: None,
            cipher_suite: None,
            archive_name: None,
            archive_resolution: None,
            created_ms: 0,
        }
    }

    fn grant() -> Grant {
        Grant {
            format: TokenFormat::Jwt,
            api_key: "12345678".into(),
            session_id: "1_s".into(),
            role: Role::Publisher,
            expires_at: i64::MAX,
            connection_data: None,
            initial_layout_class_list: vec![],
        }
    }

    async fn frames(rx: &mut OutboxRx, n: usize) -> Vec<Value> {
        let mut out = Vec::new();
        for _ in 0..n {
            let f = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.expect("a frame").expect("open");
            let text = match f {
                Frame::Text(t) => t.to_string(),
                Frame::Event { seq, body } => body.with_seq(seq),
                Frame::Close { code, .. } => panic!("closed with {code}"),
            };
            out.push(serde_json::from_str(&text).unwrap());
        }
        out
    }

    fn hub() -> Arc<Hub> {
        Hub::new(HubConfig::default(), Arc::new(NoMediaRouter), Arc::new(Metrics::default()))
    }

    #[tokio::test]
    async fn an_adopted_connection_resumes_with_what_it_missed_even_past_the_mirrored_state() {
        let old = hub();
        let (a, _arx) = old.join(session(), &grant(), TokenKey::of("t")).unwrap();
        let (_b, _brx) = old.join(session(), &grant(), TokenKey::of("t")).unwrap();
        let (snap, _) = old.snapshot("1_s").unwrap();
        let mirrored = snap.conns.iter().find(|c| c.id == a.connection_id).unwrap().seq;
        let token = snap.conns.iter().find(|c| c.id == a.connection_id).unwrap().resume_token.clone();
        assert_eq!(mirrored, 1, "a saw b join");

        let new = hub();
        assert!(new.adopt(session(), snap.clone()));
        assert!(!new.adopt(session(), snap), "adopted once");
        new.signal("1_s", None, Some(&a.connection_id), None, "queued on the new node").unwrap();

        // The dead node had sent `a` one more event than it mirrored: the new node's events
        // follow the client's count instead of being taken for ones it has seen.
        let (_, mut rx) = new.resume("1_s", &a.connection_id, &token, mirrored + 1).unwrap();
        let got = frames(&mut rx, 2).await;
        assert_eq!((got[0]["type"].as_str(), got[0]["last_seq"].as_u64()), (Some("resumed"), Some(mirrored + 2)));
        assert_eq!(
            (got[1]["data"].as_str(), got[1]["seq"].as_u64()),
            (Some("queued on the new node"), Some(mirrored + 2))
        );

        // A later resume (the client's socket dropped again) is an ordinary one: nothing it had
        // is replayed again, however far past the mirrored state it counts.
        new.signal("1_s", None, Some(&a.connection_id), None, "later").unwrap();
        let (_, mut rx) = new.resume("1_s", &a.connection_id, &token, mirrored + 2).unwrap();
        let got = frames(&mut rx, 2).await;
        assert_eq!((got[0]["type"].as_str(), got[0]["last_seq"].as_u64()), (Some("resumed"), Some(mirrored + 3)));
        assert_eq!((got[1]["data"].as_str(), got[1]["seq"].as_u64()), (Some("later"), Some(mirrored + 3)));
    }

    #[tokio::test]
    async fn an_evicted_room_closes_its_sockets_with_session_moved() {
        let h = hub();
        let (_a, mut rx) = h.join(session(), &grant(), TokenKey::of("t")).unwrap();
        frames(&mut rx, 1).await;
        h.evict("1_s", true);
        assert!(!h.is_live("1_s"));
        let f = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.unwrap().unwrap();
        assert!(matches!(f, Frame::Close { code: close::SESSION_MOVED, .. }), "{f:?}");
    }
}
