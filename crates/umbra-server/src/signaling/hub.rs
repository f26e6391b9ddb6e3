//! Live state of every session with connected clients, and the rules applied to what they ask.
//!
//! Locking: `rooms` (the map) is always taken before a room's own lock, never the other way, and
//! no lock is held across an `.await` (router calls happen between two short critical sections).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::mpsc;

use super::protocol::*;
use crate::clock::now_millis;
use crate::ids;
use crate::media_router::{
    MediaRouter, MediaTarget, PublishRequest, RouterError, RouterEvent, RouterEventKind, SubscribeRequest,
};
use crate::metrics::Metrics;
use crate::model::{MediaMode, Role, Session};
use crate::token::Grant;

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often clients are told to send a heartbeat (`ping`).
    pub heartbeat_interval: Duration,
    /// A socket silent for this long is considered dropped (and becomes resumable).
    pub heartbeat_timeout: Duration,
    /// How long a dropped connection waits for its client to resume before it is destroyed.
    pub resume_window: Duration,
    /// Frames queued for one socket before the client is deemed too slow and its socket dropped.
    pub outbox_capacity: usize,
    /// Events kept per connection for replay on resume.
    pub replay_capacity: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            resume_window: Duration::from_secs(20),
            outbox_capacity: 1024,
            replay_capacity: 256,
        }
    }
}

/// What travels from the hub to a socket task.
#[derive(Debug)]
pub enum Frame {
    /// A message without sequence number (welcome, resumed).
    Text(Arc<str>),
    /// An event: `body` is a serialized JSON object shared by every connection it goes to; the
    /// socket splices `seq` in front when writing, so neither fan-out nor the replay buffers
    /// copy it per connection.
    Event { seq: u64, body: Arc<str> },
    /// Send a close frame and end the socket.
    Close { code: u16, reason: &'static str },
}

/// Connections and streams per page of a session description (`welcome`, then `snapshot`s).
pub const SNAPSHOT_PAGE: usize = 100;

pub const CLOSE_FORCED: u16 = 4001;
pub const CLOSE_REPLACED: u16 = 4002;
pub const CLOSE_SERVER_SHUTDOWN: u16 = 1001;

struct Attachment {
    epoch: u64,
    tx: mpsc::Sender<Frame>,
}

struct Conn {
    id: String,
    role: Role,
    data: Option<String>,
    layout: Vec<String>,
    created_ms: i64,
    resume_token: String,
    seq: u64,
    /// (seq, shared body) of the latest events, for resume.
    replay: VecDeque<(u64, Arc<str>)>,
    attached: Option<Attachment>,
    /// Epoch of the socket whose loss detached this connection; a reaper only removes the
    /// connection if no newer socket resumed it since.
    detached_epoch: Option<u64>,
}

impl Conn {
    /// Queue an event; `body` is a serialized JSON object.
    fn push_event(&mut self, body: &Arc<str>, replay_capacity: usize) {
        self.seq += 1;
        self.replay.push_back((self.seq, body.clone()));
        while self.replay.len() > replay_capacity {
            self.replay.pop_front();
        }
        self.send(Frame::Event { seq: self.seq, body: body.clone() });
    }

    fn send(&mut self, frame: Frame) {
        if let Some(a) = &self.attached
            && a.tx.try_send(frame).is_err()
        {
            // Full (too slow) or closed: drop the socket; the client may resume and replay.
            self.detached_epoch = Some(a.epoch);
            self.attached = None;
        }
    }

    fn info(&self) -> ConnectionInfo {
        ConnectionInfo { connection_id: self.id.clone(), data: self.data.clone(), created_at: self.created_ms }
    }
}

struct Subscription {
    stream_id: String,
    subscriber: String,
    publisher: String,
}

#[derive(Default)]
struct RoomState {
    conns: HashMap<String, Conn>,
    streams: Vec<StreamInfo>,
    subs: HashMap<String, Subscription>,
}

impl RoomState {
    fn broadcast(&mut self, body: &Value, replay_capacity: usize) {
        let body: Arc<str> = body.to_string().into();
        for c in self.conns.values_mut() {
            c.push_event(&body, replay_capacity);
        }
    }

    fn send_to(&mut self, conn_id: &str, body: &Value, replay_capacity: usize) -> bool {
        match self.conns.get_mut(conn_id) {
            Some(c) => {
                c.push_event(&body.to_string().into(), replay_capacity);
                true
            }
            None => false,
        }
    }
}

pub struct Room {
    pub session: Session,
    state: Mutex<RoomState>,
}

impl Room {
    fn lock(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub struct Hub {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    pub config: HubConfig,
    router: Arc<dyn MediaRouter>,
    metrics: Arc<Metrics>,
    epochs: AtomicU64,
}

/// A socket's handle on its connection.
#[derive(Debug, Clone)]
pub struct ConnRef {
    pub session_id: String,
    pub connection_id: String,
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HubError {
    #[error("no connection {0} in this session")]
    UnknownConnection(String),
    #[error("no stream {0} in this session")]
    UnknownStream(String),
}

fn err(code: &'static str, message: impl Into<String>) -> SigError {
    SigError::new(code, message)
}

fn router_err(e: RouterError) -> SigError {
    SigError::new(e.slug(), e.to_string())
}

impl Hub {
    pub fn new(config: HubConfig, router: Arc<dyn MediaRouter>, metrics: Arc<Metrics>) -> Arc<Self> {
        let hub = Arc::new(Self { rooms: Mutex::new(HashMap::new()), config, router, metrics, epochs: AtomicU64::new(1) });
        let (tx, mut rx) = mpsc::unbounded_channel::<RouterEvent>();
        hub.router.start(tx);
        let weak = Arc::downgrade(&hub);
        tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                let Some(hub) = weak.upgrade() else { break };
                hub.router_event(ev);
            }
        });
        hub
    }

    fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn room(&self, session_id: &str) -> Option<Arc<Room>> {
        self.rooms().get(session_id).cloned()
    }

    fn rc(&self) -> usize {
        self.config.replay_capacity
    }

    /// Joins a verified client to its session. The returned receiver's first frame is the
    /// `welcome`, and only then the events that follow the join.
    pub fn join(&self, session: Session, grant: &Grant) -> (ConnRef, mpsc::Receiver<Frame>) {
        let (tx, rx) = mpsc::channel(self.config.outbox_capacity);
        let epoch = self.epochs.fetch_add(1, Relaxed);
        let connection_id = ids::new_id();
        let resume_token = ids::new_resume_token();
        let mut rooms = self.rooms();
        let room = rooms
            .entry(session.id.clone())
            .or_insert_with(|| {
                self.metrics.live_sessions.fetch_add(1, Relaxed);
                Arc::new(Room { session: session.clone(), state: Mutex::new(RoomState::default()) })
            })
            .clone();
        let mut st = room.lock();
        drop(rooms);
        let mut conn = Conn {
            id: connection_id.clone(),
            role: grant.role,
            data: grant.connection_data.clone(),
            layout: grant.initial_layout_class_list.clone(),
            created_ms: now_millis(),
            resume_token: resume_token.clone(),
            seq: 0,
            replay: VecDeque::new(),
            attached: Some(Attachment { epoch, tx }),
            detached_epoch: None,
        };
        let mut others: Vec<ConnectionInfo> = st.conns.values().map(Conn::info).collect();
        others.sort_by_key(|c| c.created_at);
        // The description of a big session goes out in pages: one 150 KB message would grow
        // this socket's write buffer for good (measured: 6x the memory of a connection in a
        // session of 2000) and stall the join.
        let pages = others.len().div_ceil(SNAPSHOT_PAGE).max(st.streams.len().div_ceil(SNAPSHOT_PAGE)).max(1);
        let page = |i: usize| {
            let c = others.get(i * SNAPSHOT_PAGE..).map(|r| &r[..r.len().min(SNAPSHOT_PAGE)]).unwrap_or(&[]);
            let s = st.streams.get(i * SNAPSHOT_PAGE..).map(|r| &r[..r.len().min(SNAPSHOT_PAGE)]).unwrap_or(&[]);
            (json!(c), json!(s), i + 1 == pages)
        };
        let (first_connections, first_streams, complete) = page(0);
        let welcome = json!({
            "type": "welcome",
            "v": PROTOCOL_VERSION,
            "session_id": session.id,
            "connection_id": connection_id,
            "resume_token": resume_token,
            "role": grant.role,
            "connection_data": grant.connection_data,
            "media_mode": session.media_mode,
            "archive_mode": session.archive_mode,
            "e2ee": session.e2ee(),
            "cipher_suite": session.cipher_suite,
            "heartbeat_interval_ms": self.config.heartbeat_interval.as_millis() as u64,
            "heartbeat_timeout_ms": self.config.heartbeat_timeout.as_millis() as u64,
            "resume_window_ms": self.config.resume_window.as_millis() as u64,
            "connections": first_connections,
            "streams": first_streams,
            "complete": complete,
        });
        conn.send(Frame::Text(welcome.to_string().into()));
        for i in 1..pages {
            let (connections, streams, complete) = page(i);
            let snapshot = json!({"type": "snapshot", "connections": connections, "streams": streams, "complete": complete});
            conn.send(Frame::Text(snapshot.to_string().into()));
        }
        let created = json!({"type": "connection_created", "connection": conn.info()});
        st.broadcast(&created, self.rc());
        st.conns.insert(connection_id.clone(), conn);
        self.metrics.connections.fetch_add(1, Relaxed);
        (ConnRef { session_id: session.id, connection_id, epoch }, rx)
    }

    /// Reattaches a client whose socket dropped, replaying the events it missed.
    pub fn resume(
        &self,
        session_id: &str,
        connection_id: &str,
        resume_token: &str,
        last_seq: u64,
    ) -> Result<(ConnRef, mpsc::Receiver<Frame>), SigError> {
        let gone = || err("resume_unknown_connection", "no such connection to resume: it ended or its resume window passed; connect again");
        let room = self.room(session_id).ok_or_else(gone)?;
        let mut st = room.lock();
        let conn = st.conns.get_mut(connection_id).ok_or_else(gone)?;
        if !bool::from(conn.resume_token.as_bytes().ct_eq(resume_token.as_bytes())) {
            return Err(err("resume_bad_token", "resume_token does not match this connection"));
        }
        if last_seq > conn.seq {
            return Err(err("resume_bad_seq", format!("last_seq {last_seq} is ahead of the server ({})", conn.seq)));
        }
        let oldest = conn.replay.front().map(|(s, _)| *s).unwrap_or(conn.seq + 1);
        if last_seq + 1 < oldest {
            return Err(err("resume_gap", "events after last_seq are no longer buffered; connect again"));
        }
        let (tx, rx) = mpsc::channel(self.config.outbox_capacity.max(conn.replay.len() + 8));
        let epoch = self.epochs.fetch_add(1, Relaxed);
        if let Some(old) = conn.attached.take() {
            let _ = old.tx.try_send(Frame::Close { code: CLOSE_REPLACED, reason: "resumed elsewhere" });
        }
        conn.attached = Some(Attachment { epoch, tx });
        conn.detached_epoch = None;
        let resumed = json!({"type": "resumed", "session_id": session_id, "connection_id": connection_id, "last_seq": conn.seq});
        conn.send(Frame::Text(resumed.to_string().into()));
        let missed: Vec<(u64, Arc<str>)> = conn.replay.iter().filter(|(s, _)| *s > last_seq).cloned().collect();
        for (seq, body) in missed {
            conn.send(Frame::Event { seq, body });
        }
        Ok((ConnRef { session_id: session_id.to_owned(), connection_id: connection_id.to_owned(), epoch }, rx))
    }

    /// The socket of `me` ended without a `leave`: keep the connection for the resume window.
    pub fn detach(self: &Arc<Self>, me: &ConnRef) {
        let Some(room) = self.room(&me.session_id) else { return };
        {
            let mut st = room.lock();
            let Some(conn) = st.conns.get_mut(&me.connection_id) else { return };
            match &conn.attached {
                Some(a) if a.epoch != me.epoch => return, // a newer socket took over
                _ => {}
            }
            conn.attached = None;
            conn.detached_epoch = Some(me.epoch);
        }
        let hub = Arc::clone(self);
        let me = me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.resume_window).await;
            hub.reap(&me);
        });
    }

    fn reap(&self, me: &ConnRef) {
        let still_detached = self.room(&me.session_id).is_some_and(|room| {
            room.lock()
                .conns
                .get(&me.connection_id)
                .is_some_and(|c| c.attached.is_none() && c.detached_epoch == Some(me.epoch))
        });
        if still_detached {
            self.remove(&me.session_id, &me.connection_id, Reason::NetworkDisconnected);
        }
    }

    pub fn leave(&self, me: &ConnRef) {
        self.remove(&me.session_id, &me.connection_id, Reason::ClientDisconnected);
    }

    /// Removes a connection with everything it published or subscribed to, and tells the room.
    fn remove(&self, session_id: &str, connection_id: &str, reason: Reason) -> bool {
        let mut rooms = self.rooms();
        let Some(room) = rooms.get(session_id).cloned() else { return false };
        let mut st = room.lock();
        let Some(mut conn) = st.conns.remove(connection_id) else { return false };
        self.metrics.connections.fetch_sub(1, Relaxed);
        if reason == Reason::ForceDisconnected {
            let body: Arc<str> = json!({"type": "forced_disconnect"}).to_string().into();
            conn.push_event(&body, self.rc());
            conn.send(Frame::Close { code: CLOSE_FORCED, reason: "forced disconnect" });
        }
        let rc = self.rc();
        let ended: Vec<String> = st
            .subs
            .iter()
            .filter(|(_, s)| s.subscriber == connection_id || s.publisher == connection_id)
            .map(|(k, _)| k.clone())
            .collect();
        for sub_id in ended {
            let Some(s) = st.subs.remove(&sub_id) else { continue };
            let other = if s.subscriber == connection_id { s.publisher } else { s.subscriber };
            let ev = json!({"type": "subscription_ended", "subscription_id": sub_id, "stream_id": s.stream_id});
            st.send_to(&other, &ev, rc);
        }
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut st.streams).into_iter().partition(|s| s.connection_id == connection_id);
        st.streams = kept;
        for s in gone {
            self.metrics.streams.fetch_sub(1, Relaxed);
            st.broadcast(&json!({"type": "stream_destroyed", "stream": s, "reason": reason}), rc);
        }
        st.broadcast(&json!({"type": "connection_destroyed", "connection": conn.info(), "reason": reason}), rc);
        if room.session.media_mode == MediaMode::Routed {
            self.router.disconnect(session_id, connection_id);
        }
        if st.conns.is_empty() {
            drop(st);
            rooms.remove(session_id);
            self.metrics.live_sessions.fetch_sub(1, Relaxed);
        }
        true
    }

    fn router_event(&self, ev: RouterEvent) {
        let Some(room) = self.room(&ev.session_id) else { return };
        let target = match &ev.target {
            MediaTarget::Publisher { stream_id } => json!({"stream_id": stream_id}),
            MediaTarget::Subscriber { subscription_id } => json!({"subscription_id": subscription_id}),
        };
        let mut body = match ev.kind {
            RouterEventKind::Candidate(c) => json!({"type": "ice", "candidate": c}),
            RouterEventKind::Connected => json!({"type": "media_connected"}),
            RouterEventKind::Failed(why) => json!({"type": "media_failed", "message": why}),
            RouterEventKind::Closed(why) => json!({"type": "media_closed", "message": why}),
        };
        if let (Value::Object(b), Value::Object(t)) = (&mut body, target) {
            b.extend(t);
        }
        room.lock().send_to(&ev.connection_id, &body, self.rc());
    }

    /// Handles one request from a connected client; `Ok` carries the fields of the `ack`.
    pub async fn handle(&self, me: &ConnRef, msg: ClientMessage) -> Result<Value, SigError> {
        let room = self.room(&me.session_id).ok_or_else(|| err("not_connected", "this connection has ended"))?;
        let role = room
            .lock()
            .conns
            .get(&me.connection_id)
            .map(|c| c.role)
            .ok_or_else(|| err("not_connected", "this connection has ended"))?;
        match msg {
            ClientMessage::Connect { .. } | ClientMessage::Resume { .. } => {
                Err(err("already_connected", "this socket is already connected to a session"))
            }
            ClientMessage::Ping { .. } => Ok(json!({})),
            ClientMessage::Leave => Ok(json!({})),
            ClientMessage::Publish { stream, sdp_offer, .. } => self.publish(&room, me, role, stream, sdp_offer).await,
            ClientMessage::Unpublish { stream_id, .. } => self.unpublish(&room, me, &stream_id),
            ClientMessage::Subscribe { stream_id, sdp_offer, .. } => {
                self.subscribe(&room, me, role, stream_id, sdp_offer).await
            }
            ClientMessage::Unsubscribe { subscription_id, .. } => self.unsubscribe(&room, me, &subscription_id),
            ClientMessage::Answer { subscription_id, sdp_answer, .. } => self.answer(&room, me, &subscription_id, sdp_answer),
            ClientMessage::Ice { subscription_id, stream_id, candidate, .. } => {
                self.ice(&room, me, subscription_id, stream_id, candidate).await
            }
            ClientMessage::Signal { to, signal_type, data, .. } => {
                if !role.can_signal() {
                    return Err(err("role_forbidden", "role publisheronly cannot send signals"));
                }
                self.signal(&me.session_id, Some(&me.connection_id), to.as_deref(), signal_type.as_deref(), &data)
                    .map_err(|e| match e {
                        SignalFailure::Invalid(m) => err("bad_request", m),
                        SignalFailure::Hub(h) => err("unknown_connection", h.to_string()),
                    })?;
                Ok(json!({}))
            }
            ClientMessage::SetStreamProperty { stream_id, property, value, .. } => {
                self.set_property(&room, me, &stream_id, property, value)
            }
            ClientMessage::ForceDisconnect { connection_id, .. } => {
                if !role.can_moderate() {
                    return Err(err("role_forbidden", format!("role {} cannot force a disconnect; only a moderator can", role.as_str())));
                }
                self.force_disconnect(&me.session_id, &connection_id).map_err(|e| err("unknown_connection", e.to_string()))?;
                Ok(json!({}))
            }
        }
    }

    async fn publish(
        &self,
        room: &Room,
        me: &ConnRef,
        role: Role,
        stream: PublishStream,
        sdp_offer: Option<String>,
    ) -> Result<Value, SigError> {
        if !role.can_publish() {
            return Err(err("role_forbidden", "role subscriber cannot publish"));
        }
        let session = &room.session;
        // The E2EE gate: in an encrypted session nothing that has not declared encryption may
        // send media, so a client that cannot encrypt never sends plaintext into it.
        match (session.cipher_suite, &stream.e2ee) {
            (Some(suite), None) => {
                return Err(err(
                    "e2ee_required",
                    format!(
                        "client does not support end-to-end encryption: this session is end-to-end encrypted, \
                         so a publish must declare stream.e2ee.cipher_suite = {suite}"
                    ),
                ));
            }
            (Some(suite), Some(d)) if d.cipher_suite != suite => {
                return Err(err(
                    "e2ee_cipher_suite_mismatch",
                    format!("this session encrypts with cipher suite {suite}, the stream declared {}", d.cipher_suite),
                ));
            }
            (None, Some(_)) => {
                return Err(err(
                    "e2ee_not_enabled",
                    "this session is not end-to-end encrypted: its subscribers would hold no key; publish without stream.e2ee",
                ));
            }
            _ => {}
        }
        let name = stream.name.unwrap_or_default();
        if name.len() > 256 {
            return Err(err("bad_request", "stream name is longer than 256 bytes"));
        }
        let stream_id = ids::new_id();
        let answer = match (session.media_mode, sdp_offer) {
            (MediaMode::Relayed, None) => None,
            (MediaMode::Relayed, Some(_)) => {
                return Err(err(
                    "bad_request",
                    "relayed session: publish carries no SDP; each subscriber's offer reaches you as subscribe_offer",
                ));
            }
            (MediaMode::Routed, None) => return Err(err("bad_request", "routed session: publish needs sdp_offer for the media router")),
            (MediaMode::Routed, Some(offer)) => {
                let req = PublishRequest {
                    session_id: session.id.clone(),
                    connection_id: me.connection_id.clone(),
                    stream_id: stream_id.clone(),
                    sdp_offer: offer,
                    e2ee_cipher_suite: session.cipher_suite,
                    has_audio: stream.has_audio,
                    has_video: stream.has_video,
                };
                Some(self.router.publish(req).await.map_err(router_err)?)
            }
        };
        let mut st = room.lock();
        let Some(conn) = st.conns.get(&me.connection_id) else {
            drop(st);
            self.router.unpublish(&session.id, &stream_id);
            return Err(err("not_connected", "this connection has ended"));
        };
        let info = StreamInfo {
            stream_id: stream_id.clone(),
            connection_id: me.connection_id.clone(),
            name,
            has_audio: stream.has_audio,
            has_video: stream.has_video,
            video_type: stream.video_type.unwrap_or(VideoType::Camera),
            video_dimensions: None,
            e2ee: session.e2ee(),
            cipher_suite: session.cipher_suite,
            created_at: now_millis(),
            layout_class_list: conn.layout.clone(),
        };
        st.streams.push(info.clone());
        self.metrics.streams.fetch_add(1, Relaxed);
        st.broadcast(&json!({"type": "stream_created", "stream": info}), self.rc());
        Ok(json!({"stream_id": stream_id, "sdp_answer": answer}))
    }

    fn unpublish(&self, room: &Room, me: &ConnRef, stream_id: &str) -> Result<Value, SigError> {
        let rc = self.rc();
        let mut st = room.lock();
        let pos = st
            .streams
            .iter()
            .position(|s| s.stream_id == stream_id)
            .ok_or_else(|| err("unknown_stream", format!("no stream {stream_id} in this session")))?;
        if st.streams[pos].connection_id != me.connection_id {
            return Err(err("not_owner", "only the connection that published a stream can unpublish it"));
        }
        let s = st.streams.remove(pos);
        self.metrics.streams.fetch_sub(1, Relaxed);
        let ended: Vec<String> = st.subs.iter().filter(|(_, x)| x.stream_id == stream_id).map(|(k, _)| k.clone()).collect();
        for k in ended {
            if let Some(sub) = st.subs.remove(&k) {
                st.send_to(&sub.subscriber, &json!({"type": "subscription_ended", "subscription_id": k, "stream_id": stream_id}), rc);
            }
        }
        st.broadcast(&json!({"type": "stream_destroyed", "stream": s, "reason": Reason::Unpublished}), rc);
        drop(st);
        if room.session.media_mode == MediaMode::Routed {
            self.router.unpublish(&room.session.id, stream_id);
        }
        Ok(json!({}))
    }

    async fn subscribe(&self, room: &Room, me: &ConnRef, role: Role, stream_id: String, offer: String) -> Result<Value, SigError> {
        if !role.can_subscribe() {
            return Err(err("role_forbidden", "role publisheronly cannot subscribe"));
        }
        if offer.trim().is_empty() {
            return Err(err("bad_request", "sdp_offer is empty"));
        }
        let subscription_id = ids::new_id();
        let publisher = {
            let st = room.lock();
            let s = st
                .streams
                .iter()
                .find(|s| s.stream_id == stream_id)
                .ok_or_else(|| err("unknown_stream", format!("no stream {stream_id} in this session")))?;
            s.connection_id.clone()
        };
        match room.session.media_mode {
            MediaMode::Relayed => {
                let mut st = room.lock();
                if !st.streams.iter().any(|s| s.stream_id == stream_id) {
                    return Err(err("unknown_stream", format!("no stream {stream_id} in this session")));
                }
                let ev = json!({
                    "type": "subscribe_offer", "subscription_id": subscription_id, "stream_id": stream_id,
                    "subscriber_connection_id": me.connection_id, "sdp_offer": offer,
                });
                st.send_to(&publisher, &ev, self.rc());
                st.subs.insert(
                    subscription_id.clone(),
                    Subscription { stream_id, subscriber: me.connection_id.clone(), publisher },
                );
                Ok(json!({"subscription_id": subscription_id, "sdp_answer": null}))
            }
            MediaMode::Routed => {
                let req = SubscribeRequest {
                    session_id: room.session.id.clone(),
                    connection_id: me.connection_id.clone(),
                    subscription_id: subscription_id.clone(),
                    stream_id: stream_id.clone(),
                    sdp_offer: offer,
                };
                let answer = self.router.subscribe(req).await.map_err(router_err)?;
                room.lock().subs.insert(
                    subscription_id.clone(),
                    Subscription { stream_id, subscriber: me.connection_id.clone(), publisher },
                );
                Ok(json!({"subscription_id": subscription_id, "sdp_answer": answer}))
            }
        }
    }

    fn unsubscribe(&self, room: &Room, me: &ConnRef, subscription_id: &str) -> Result<Value, SigError> {
        let mut st = room.lock();
        match st.subs.get(subscription_id) {
            Some(s) if s.subscriber == me.connection_id => {}
            _ => return Err(err("unknown_subscription", format!("you have no subscription {subscription_id}"))),
        }
        let Some(sub) = st.subs.remove(subscription_id) else { return Ok(json!({})) };
        match room.session.media_mode {
            MediaMode::Relayed => {
                let ev = json!({"type": "subscription_ended", "subscription_id": subscription_id, "stream_id": sub.stream_id});
                st.send_to(&sub.publisher, &ev, self.rc());
            }
            MediaMode::Routed => {
                drop(st);
                self.router.unsubscribe(&room.session.id, subscription_id);
            }
        }
        Ok(json!({}))
    }

    fn answer(&self, room: &Room, me: &ConnRef, subscription_id: &str, sdp: String) -> Result<Value, SigError> {
        let mut st = room.lock();
        let sub = match st.subs.get(subscription_id) {
            Some(s) if s.publisher == me.connection_id => s,
            _ => return Err(err("unknown_subscription", format!("no subscription {subscription_id} to a stream of yours"))),
        };
        let (to, stream_id) = (sub.subscriber.clone(), sub.stream_id.clone());
        let ev = json!({"type": "answer", "subscription_id": subscription_id, "stream_id": stream_id, "sdp_answer": sdp});
        st.send_to(&to, &ev, self.rc());
        Ok(json!({}))
    }

    async fn ice(
        &self,
        room: &Room,
        me: &ConnRef,
        subscription_id: Option<String>,
        stream_id: Option<String>,
        candidate: crate::media_router::IceCandidate,
    ) -> Result<Value, SigError> {
        let target = match (subscription_id, stream_id) {
            (Some(sub), None) => {
                let st = room.lock();
                match st.subs.get(&sub) {
                    Some(s) if s.subscriber == me.connection_id || s.publisher == me.connection_id => {
                        MediaTarget::Subscriber { subscription_id: sub }
                    }
                    _ => return Err(err("unknown_subscription", format!("no subscription {sub} of yours"))),
                }
            }
            (None, Some(stream)) => {
                let st = room.lock();
                if !st.streams.iter().any(|s| s.stream_id == stream && s.connection_id == me.connection_id) {
                    return Err(err("unknown_stream", format!("you publish no stream {stream}")));
                }
                MediaTarget::Publisher { stream_id: stream }
            }
            _ => return Err(err("bad_request", "ice names exactly one of subscription_id or stream_id")),
        };
        match room.session.media_mode {
            MediaMode::Routed => {
                self.router.add_ice_candidate(&room.session.id, target, candidate).await.map_err(router_err)?;
            }
            MediaMode::Relayed => {
                let MediaTarget::Subscriber { subscription_id } = target else {
                    return Err(err("bad_request", "relayed session: ICE goes with a subscription_id"));
                };
                let mut st = room.lock();
                let Some(s) = st.subs.get(&subscription_id) else {
                    return Err(err("unknown_subscription", "the subscription ended"));
                };
                let (to, from) = if s.subscriber == me.connection_id {
                    (s.publisher.clone(), "subscriber")
                } else {
                    (s.subscriber.clone(), "publisher")
                };
                let ev = json!({"type": "ice", "subscription_id": subscription_id, "from": from, "candidate": candidate});
                st.send_to(&to, &ev, self.rc());
            }
        }
        Ok(json!({}))
    }

    fn set_property(&self, room: &Room, me: &ConnRef, stream_id: &str, property: StreamProperty, value: Value) -> Result<Value, SigError> {
        let mut st = room.lock();
        let s = st
            .streams
            .iter_mut()
            .find(|s| s.stream_id == stream_id)
            .ok_or_else(|| err("unknown_stream", format!("no stream {stream_id} in this session")))?;
        if s.connection_id != me.connection_id {
            return Err(err("not_owner", "only the publisher of a stream can change its properties"));
        }
        let old = match property {
            StreamProperty::HasAudio | StreamProperty::HasVideo => {
                let Some(v) = value.as_bool() else { return Err(err("bad_request", "has_audio and has_video take true or false")) };
                let slot = if property == StreamProperty::HasAudio { &mut s.has_audio } else { &mut s.has_video };
                let old = *slot;
                *slot = v;
                Value::Bool(old)
            }
            StreamProperty::VideoDimensions => {
                let ok = value.get("width").and_then(Value::as_u64).is_some() && value.get("height").and_then(Value::as_u64).is_some();
                if !ok {
                    return Err(err("bad_request", "video_dimensions takes {\"width\": n, \"height\": n}"));
                }
                s.video_dimensions.replace(value.clone()).unwrap_or(Value::Null)
            }
        };
        let ev = json!({"type": "stream_property_changed", "stream_id": stream_id, "property": property, "old_value": old, "new_value": value});
        st.broadcast(&ev, self.rc());
        Ok(json!({}))
    }

    /// Sends a signal to the whole session or to one connection. `from` is `None` for the REST API.
    pub fn signal(
        &self,
        session_id: &str,
        from: Option<&str>,
        to: Option<&str>,
        signal_type: Option<&str>,
        data: &str,
    ) -> Result<(), SignalFailure> {
        validate_signal(signal_type, data).map_err(SignalFailure::Invalid)?;
        let ev = json!({"type": "signal", "from": from, "signal_type": signal_type.unwrap_or(""), "data": data});
        let Some(room) = self.room(session_id) else {
            return match to {
                Some(c) => Err(SignalFailure::Hub(HubError::UnknownConnection(c.to_owned()))),
                None => Ok(()), // nobody connected: delivered to everyone, i.e. no one
            };
        };
        let mut st = room.lock();
        match to {
            None => st.broadcast(&ev, self.rc()),
            Some(c) => {
                if !st.send_to(c, &ev, self.rc()) {
                    return Err(SignalFailure::Hub(HubError::UnknownConnection(c.to_owned())));
                }
            }
        }
        Ok(())
    }

    pub fn force_disconnect(&self, session_id: &str, connection_id: &str) -> Result<(), HubError> {
        if self.remove(session_id, connection_id, Reason::ForceDisconnected) {
            Ok(())
        } else {
            Err(HubError::UnknownConnection(connection_id.to_owned()))
        }
    }

    pub fn streams(&self, session_id: &str) -> Vec<StreamInfo> {
        self.room(session_id).map(|r| r.lock().streams.clone()).unwrap_or_default()
    }

    /// Asks publishers to mute audio: one stream, or all but `excluded`. Returns the streams told.
    pub fn mute(&self, session_id: &str, stream_id: Option<&str>, excluded: &[String]) -> Result<usize, HubError> {
        let Some(room) = self.room(session_id) else {
            return match stream_id {
                Some(s) => Err(HubError::UnknownStream(s.to_owned())),
                None => Ok(0),
            };
        };
        let rc = self.rc();
        let mut st = room.lock();
        let targets: Vec<(String, String)> = st
            .streams
            .iter()
            .filter(|s| stream_id.is_none_or(|id| id == s.stream_id) && !excluded.contains(&s.stream_id))
            .map(|s| (s.stream_id.clone(), s.connection_id.clone()))
            .collect();
        if let Some(id) = stream_id
            && targets.is_empty()
        {
            return Err(HubError::UnknownStream(id.to_owned()));
        }
        for (sid, owner) in &targets {
            st.send_to(owner, &json!({"type": "mute_forced", "stream_id": sid}), rc);
        }
        Ok(targets.len())
    }

    /// Tells every socket the server is going away; clients resume against the restarted server
    /// only by reconnecting (live state is not persisted).
    pub fn shutdown(&self) {
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        for room in rooms {
            let mut st = room.lock();
            for c in st.conns.values_mut() {
                c.send(Frame::Close { code: CLOSE_SERVER_SHUTDOWN, reason: "server shutting down" });
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalFailure {
    Invalid(String),
    Hub(HubError),
}

pub fn validate_signal(signal_type: Option<&str>, data: &str) -> Result<(), String> {
    if data.len() > MAX_SIGNAL_DATA {
        return Err(format!("signal data is {} bytes; the limit is {MAX_SIGNAL_DATA}", data.len()));
    }
    if let Some(t) = signal_type {
        if t.len() > MAX_SIGNAL_TYPE {
            return Err(format!("signal type is longer than {MAX_SIGNAL_TYPE} characters"));
        }
        if !t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            return Err("signal type may contain only letters, digits, '-' and '_'".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The routed path through the media-router seam, with a recording router standing in for
    //! the real one (which the router issue builds).
    use super::*;
    use crate::media_router::{IceCandidate, RouterEventSink, RouterFuture};
    use crate::model::{ArchiveMode, MediaMode, Role};
    use crate::token::{Grant, TokenFormat};

    #[derive(Default)]
    struct Recording {
        calls: Mutex<Vec<String>>,
        sink: Mutex<Option<RouterEventSink>>,
    }

    impl MediaRouter for Recording {
        fn start(&self, events: RouterEventSink) {
            *self.sink.lock().unwrap() = Some(events);
        }
        fn publish(&self, req: PublishRequest) -> RouterFuture<'_, String> {
            self.calls.lock().unwrap().push(format!("publish {} {} {:?}", req.stream_id, req.sdp_offer, req.e2ee_cipher_suite));
            Box::pin(async move { Ok(format!("answer-to {}", req.sdp_offer)) })
        }
        fn subscribe(&self, req: SubscribeRequest) -> RouterFuture<'_, String> {
            self.calls.lock().unwrap().push(format!("subscribe {} {}", req.stream_id, req.sdp_offer));
            Box::pin(async move {
                if req.sdp_offer == "bad" { Err(RouterError::BadSdp("no media sections".into())) } else { Ok("sub-answer".into()) }
            })
        }
        fn add_ice_candidate(&self, _: &str, target: MediaTarget, c: IceCandidate) -> RouterFuture<'_, ()> {
            self.calls.lock().unwrap().push(format!("ice {target:?} {}", c.candidate));
            Box::pin(async { Ok(()) })
        }
        fn unpublish(&self, _: &str, stream_id: &str) {
            self.calls.lock().unwrap().push(format!("unpublish {stream_id}"));
        }
        fn unsubscribe(&self, _: &str, subscription_id: &str) {
            self.calls.lock().unwrap().push(format!("unsubscribe {subscription_id}"));
        }
        fn disconnect(&self, _: &str, connection_id: &str) {
            self.calls.lock().unwrap().push(format!("disconnect {connection_id}"));
        }
    }

    fn session() -> Session {
        Session {
            id: "1_s".into(),
            api_key: "12345678".into(),
            media_mode: MediaMode::Routed,
            archive_mode: ArchiveMode::Manual,
            location: None,
            cipher_suite: Some(6),
            archive_name: None,
            archive_resolution: None,
            created_ms: 0,
        }
    }

    fn grant(role: Role) -> Grant {
        Grant {
            format: TokenFormat::Jwt,
            api_key: "12345678".into(),
            session_id: "1_s".into(),
            role,
            expires_at: i64::MAX,
            connection_data: None,
            initial_layout_class_list: vec![],
        }
    }

    async fn next_event(rx: &mut mpsc::Receiver<Frame>, ty: &str) -> Value {
        for _ in 0..20 {
            let f = tokio::time::timeout(Duration::from_secs(2), rx.recv()).await.expect("a frame").expect("open");
            let text = match f {
                Frame::Text(t) => t.to_string(),
                Frame::Event { body, .. } => body.to_string(),
                Frame::Close { .. } => panic!("closed"),
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["type"] == ty {
                return v;
            }
        }
        panic!("no {ty}")
    }

    #[tokio::test]
    async fn routed_offers_go_to_the_router_and_its_events_reach_the_client() {
        let router = Arc::new(Recording::default());
        let hub = Hub::new(HubConfig::default(), router.clone(), Arc::new(Metrics::default()));
        let (publisher, mut prx) = hub.join(session(), &grant(Role::Publisher));
        let (subscriber, mut srx) = hub.join(session(), &grant(Role::Subscriber));

        let publish = ClientMessage::Publish {
            id: Value::Null,
            stream: serde_json::from_value(json!({"e2ee": {"cipher_suite": 6}})).unwrap(),
            sdp_offer: Some("pub-offer".into()),
        };
        let ack = hub.handle(&publisher, publish).await.unwrap();
        assert_eq!(ack["sdp_answer"], "answer-to pub-offer");
        let stream_id = ack["stream_id"].as_str().unwrap().to_owned();
        assert_eq!(next_event(&mut srx, "stream_created").await["stream"]["e2ee"], true);

        let sub = ClientMessage::Subscribe { id: Value::Null, stream_id: stream_id.clone(), sdp_offer: "sub-offer".into() };
        let ack = hub.handle(&subscriber, sub).await.unwrap();
        assert_eq!(ack["sdp_answer"], "sub-answer");
        let subscription_id = ack["subscription_id"].as_str().unwrap().to_owned();
        let bad = ClientMessage::Subscribe { id: Value::Null, stream_id: stream_id.clone(), sdp_offer: "bad".into() };
        assert_eq!(hub.handle(&subscriber, bad).await.unwrap_err().code, "media_bad_sdp");

        let cand = IceCandidate { candidate: "candidate:1".into(), sdp_mid: None, sdp_m_line_index: Some(0) };
        let ice = ClientMessage::Ice { id: Value::Null, subscription_id: None, stream_id: Some(stream_id.clone()), candidate: cand.clone() };
        hub.handle(&publisher, ice).await.unwrap();
        // Another client's stream is not yours to send candidates for.
        let ice = ClientMessage::Ice { id: Value::Null, subscription_id: None, stream_id: Some(stream_id.clone()), candidate: cand };
        assert_eq!(hub.handle(&subscriber, ice).await.unwrap_err().code, "unknown_stream");

        let sink = router.sink.lock().unwrap().clone().unwrap();
        sink.send(RouterEvent {
            session_id: "1_s".into(),
            connection_id: subscriber.connection_id.clone(),
            target: MediaTarget::Subscriber { subscription_id: subscription_id.clone() },
            kind: RouterEventKind::Connected,
        })
        .unwrap();
        let ev = next_event(&mut srx, "media_connected").await;
        assert_eq!(ev["subscription_id"], subscription_id.as_str());
        sink.send(RouterEvent {
            session_id: "1_s".into(),
            connection_id: publisher.connection_id.clone(),
            target: MediaTarget::Publisher { stream_id: stream_id.clone() },
            kind: RouterEventKind::Failed("ICE timed out".into()),
        })
        .unwrap();
        assert_eq!(next_event(&mut prx, "media_failed").await["message"], "ICE timed out");

        hub.handle(&subscriber, ClientMessage::Unsubscribe { id: Value::Null, subscription_id: subscription_id.clone() }).await.unwrap();
        hub.leave(&publisher);
        let calls = router.calls.lock().unwrap().clone();
        assert_eq!(
            calls,
            vec![
                format!("publish {stream_id} pub-offer Some(6)"),
                format!("subscribe {stream_id} sub-offer"),
                format!("subscribe {stream_id} bad"),
                format!("ice Publisher {{ stream_id: \"{stream_id}\" }} candidate:1"),
                format!("unsubscribe {subscription_id}"),
                format!("disconnect {}", publisher.connection_id),
            ]
        );
    }
}
