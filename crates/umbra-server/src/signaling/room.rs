//! One session's live state: its connections (each with its outbox, sequence counter and replay
//! buffer), streams and subscriptions, and how that state is described to a joining client in
//! pages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard};

use umbra_protocol::limits::SNAPSHOT_PAGE;
use umbra_protocol::{ConnectionInfo, MediaTarget, Reason, Role, ServerMessage, StreamInfo, VideoPreference};

use super::frame::{EventBody, Frame};
use super::limits::{SignalBudget, TokenKey};
use super::outbox::{Bounds, Outbox, PushError};
use crate::model::Session;

pub struct Attachment {
    pub epoch: u64,
    pub tx: Outbox,
}

pub struct Conn {
    pub id: String,
    pub role: Role,
    pub data: Option<String>,
    pub layout: Vec<String>,
    pub created_ms: i64,
    pub resume_token: String,
    /// The `seq` of the latest event queued for this connection.
    pub seq: u64,
    /// The latest events, for resume, within the room's replay bounds.
    pub replay: VecDeque<(u64, EventBody)>,
    /// What `replay` holds, counted as `Frame::wire_len` counts it.
    pub replay_bytes: usize,
    /// The token it connected with, for the per-token connection count.
    pub token: TokenKey,
    /// Subscriptions it holds (as the subscriber), for the per-connection cap.
    pub subscriptions: usize,
    pub signals: SignalBudget,
    pub attached: Option<Attachment>,
    /// Epoch of the socket whose loss detached this connection; a reaper only removes the
    /// connection if no newer socket resumed it since.
    pub detached_epoch: Option<u64>,
    /// Taken over from another cluster node (`snapshot.rs`) and not resumed here yet: the `seq`
    /// it had in the mirrored state. Its client may have seen events the old node never
    /// mirrored (see `Hub::resume`); the first resume here settles that, once.
    pub adopted: Option<u64>,
    /// Counted in the hub's per-token connections (joined here, not adopted).
    pub token_slot: bool,
}

impl Conn {
    pub fn push_event(&mut self, body: &EventBody, replay: Bounds) {
        self.seq += 1;
        self.replay.push_back((self.seq, body.clone()));
        self.replay_bytes += body.wire_len();
        while self.replay.len() > replay.frames || self.replay_bytes > replay.bytes {
            let Some((_, old)) = self.replay.pop_front() else { break };
            self.replay_bytes -= old.wire_len();
        }
        self.send(Frame::Event { seq: self.seq, body: body.clone() });
    }

    /// After a takeover: the client has seen events up to `last_seq`, past the `mirrored` state
    /// this node adopted (the dead node sent them before mirroring them; they died with it).
    /// The events queued here since the adoption (`media_restart`, …) are renumbered to follow
    /// the client's, so it neither refuses them as already seen nor misses them.
    pub fn count_on_from(&mut self, last_seq: u64, mirrored: u64) {
        let since: Vec<EventBody> =
            self.replay.drain(..).filter(|(s, _)| *s > mirrored).map(|(_, body)| body).collect();
        self.replay_bytes = 0;
        self.seq = last_seq;
        for body in since {
            self.seq += 1;
            self.replay_bytes += body.wire_len();
            self.replay.push_back((self.seq, body));
        }
    }

    pub fn send(&mut self, frame: Frame) {
        let Some(a) = &self.attached else { return };
        match a.tx.push(frame) {
            Ok(()) => return,
            // Too slow: stop the socket now rather than after it writes its backlog; the client
            // may resume and be replayed what it missed.
            Err(PushError::Full) => a.tx.cut(),
            Err(PushError::Closed) => {}
        }
        self.detached_epoch = Some(a.epoch);
        self.attached = None;
    }

    pub fn info(&self) -> ConnectionInfo {
        ConnectionInfo { connection_id: self.id.clone(), data: self.data.clone(), created_at: self.created_ms }
    }
}

pub struct Subscription {
    pub stream_id: String,
    pub subscriber: String,
    pub publisher: String,
    /// The subscriber's last `set_video_preference`, given to the router again after a
    /// `media_restart`.
    pub preference: VideoPreference,
}

pub struct RoomState {
    pub conns: HashMap<String, Conn>,
    /// In publication order, which is the order a joining client is told them in.
    pub streams: Vec<StreamInfo>,
    /// Insert and remove only with `add_subscription` and `remove_subscription`, which keep each
    /// subscriber's count.
    pub subs: HashMap<String, Subscription>,
    /// Events kept per connection for replay on resume.
    pub replay: Bounds,
    /// Peer connections asked to renegotiate on a new router (see `restart.rs`).
    pub restarting: HashSet<MediaTarget>,
    /// Counts changes, so that cluster mode mirrors a room only when it changed.
    pub version: u64,
    /// The stream the router last named the loudest (`active_speaker_changed`).
    pub active_speaker: Option<String>,
}

impl RoomState {
    pub fn broadcast(&mut self, event: &ServerMessage) {
        self.version += 1;
        let body = EventBody::new(event);
        for c in self.conns.values_mut() {
            c.push_event(&body, self.replay);
        }
    }

    pub fn add_subscription(&mut self, subscription_id: String, sub: Subscription) {
        self.version += 1;
        if let Some(c) = self.conns.get_mut(&sub.subscriber) {
            c.subscriptions += 1;
        }
        self.subs.insert(subscription_id, sub);
    }

    pub fn remove_subscription(&mut self, subscription_id: &str) -> Option<Subscription> {
        let sub = self.subs.remove(subscription_id)?;
        self.version += 1;
        self.restarting.remove(&MediaTarget::Subscription { subscription_id: subscription_id.to_owned() });
        if let Some(c) = self.conns.get_mut(&sub.subscriber) {
            c.subscriptions = c.subscriptions.saturating_sub(1);
        }
        Some(sub)
    }

    /// Streams `connection_id` publishes.
    pub fn streams_of(&self, connection_id: &str) -> usize {
        self.streams.iter().filter(|s| s.connection_id == connection_id).count()
    }

    /// Queues an event for one connection; false if it is not in the room.
    pub fn send_to(&mut self, conn_id: &str, event: &ServerMessage) -> bool {
        self.version += 1;
        match self.conns.get_mut(conn_id) {
            Some(c) => {
                c.push_event(&EventBody::new(event), self.replay);
                true
            }
            None => false,
        }
    }

    pub fn stream(&self, stream_id: &str) -> Option<&StreamInfo> {
        self.streams.iter().find(|s| s.stream_id == stream_id)
    }

    /// Removes a stream and every subscription to it, telling each subscriber, then everyone.
    /// `None` if there is no such stream.
    pub fn end_stream(&mut self, stream_id: &str, reason: Reason) -> Option<StreamInfo> {
        let pos = self.streams.iter().position(|s| s.stream_id == stream_id)?;
        let stream = self.streams.remove(pos);
        self.restarting.remove(&MediaTarget::Stream { stream_id: stream_id.to_owned() });
        let ended: Vec<String> =
            self.subs.iter().filter(|(_, s)| s.stream_id == stream_id).map(|(k, _)| k.clone()).collect();
        for subscription_id in ended {
            if let Some(sub) = self.remove_subscription(&subscription_id) {
                let ev = ServerMessage::SubscriptionEnded { subscription_id, stream_id: stream_id.to_owned() };
                self.send_to(&sub.subscriber, &ev);
            }
        }
        self.broadcast(&ServerMessage::StreamDestroyed { stream: stream.clone(), reason });
        if self.active_speaker.as_deref() == Some(stream_id) {
            // Nobody is named until the router hears someone else: an app should not keep
            // highlighting a tile that is gone.
            self.active_speaker = None;
            self.broadcast(&ServerMessage::ActiveSpeakerChanged { stream_id: None, connection_id: None });
        }
        Some(stream)
    }
}

pub struct Room {
    pub session: Session,
    state: Mutex<RoomState>,
}

impl Room {
    pub fn new(session: Session, replay: Bounds) -> Self {
        let state = RoomState {
            conns: HashMap::new(),
            streams: Vec::new(),
            subs: HashMap::new(),
            replay,
            restarting: HashSet::new(),
            version: 0,
            active_speaker: None,
        };
        Self { session, state: Mutex::new(state) }
    }

    pub fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One page of a session's description: `welcome` carries the first, `snapshot`s the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub connections: Vec<ConnectionInfo>,
    pub streams: Vec<StreamInfo>,
    pub complete: bool,
}

/// Splits a session's state into pages of at most [`SNAPSHOT_PAGE`] connections and as many
/// streams; there is always at least one page, and only the last is `complete`.
///
/// A big session goes out in pages because one 150 KB message would grow the joining socket's
/// write buffer for good (measured: 6x the memory of a connection in a session of 2000) and stall
/// the join.
pub fn pages(connections: &[ConnectionInfo], streams: &[StreamInfo]) -> Vec<Page> {
    let count = connections.len().div_ceil(SNAPSHOT_PAGE).max(streams.len().div_ceil(SNAPSHOT_PAGE)).max(1);
    let mut conns = connections.chunks(SNAPSHOT_PAGE);
    let mut strs = streams.chunks(SNAPSHOT_PAGE);
    (0..count)
        .map(|i| Page {
            connections: conns.next().unwrap_or_default().to_vec(),
            streams: strs.next().unwrap_or_default().to_vec(),
            complete: i + 1 == count,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use umbra_protocol::VideoType;

    use super::*;

    fn conns(n: usize) -> Vec<ConnectionInfo> {
        (0..n).map(|i| ConnectionInfo { connection_id: format!("c{i}"), data: None, created_at: i as i64 }).collect()
    }

    fn streams(n: usize) -> Vec<StreamInfo> {
        (0..n)
            .map(|i| StreamInfo {
                stream_id: format!("s{i}"),
                connection_id: format!("c{i}"),
                name: String::new(),
                has_audio: true,
                has_video: true,
                video_type: VideoType::Camera,
                video_dimensions: None,
                e2ee: false,
                cipher_suite: None,
                created_at: 0,
                layout_class_list: vec![],
            })
            .collect()
    }

    #[test]
    fn pages_hold_every_connection_and_stream_once_in_order() {
        for (nc, ns, expected_pages) in
            [(0, 0, 1), (100, 100, 1), (101, 0, 2), (150, 120, 2), (0, 250, 3), (201, 99, 3)]
        {
            let (c, s) = (conns(nc), streams(ns));
            let p = pages(&c, &s);
            assert_eq!(p.len(), expected_pages, "{nc} connections, {ns} streams");
            assert!(p.iter().all(|x| x.connections.len() <= SNAPSHOT_PAGE && x.streams.len() <= SNAPSHOT_PAGE));
            assert_eq!(p.iter().filter(|x| x.complete).count(), 1);
            assert!(p.last().unwrap().complete);
            let all_c: Vec<_> = p.iter().flat_map(|x| x.connections.clone()).collect();
            let all_s: Vec<_> = p.iter().flat_map(|x| x.streams.clone()).collect();
            assert_eq!((all_c, all_s), (c, s));
        }
    }
}
