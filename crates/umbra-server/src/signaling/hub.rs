//! Every session with connected clients: joining (with the session described in pages),
//! resuming, leaving, and what the REST API asks of live sessions (signals, force disconnect,
//! streams, mute). Requests from clients are in `requests.rs`, the router's side in `media.rs`.
//!
//! Locking: `rooms` (the map) is always taken before a room's own lock, never the other way, and
//! no lock is held across an `.await` (router calls happen between two short critical sections).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;
use umbra_protocol::{ErrorCode, MediaMode, PROTOCOL_VERSION, Reason, ServerMessage, StreamInfo, close};

use super::error::SigError;
use super::frame::{EventBody, Frame};
use super::limits::{Limits, SignalBudget, TokenKey};
use super::outbox::{Bounds, Outbox, OutboxRx, outbox};
use super::room::{Attachment, Conn, Room, pages};
use super::rules;
use crate::clock::now_millis;
use crate::ids;
use crate::media_router::MediaRouter;
use crate::metrics::Metrics;
use crate::model::Session;
use crate::token::Grant;

#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How often clients are told to send a heartbeat (`ping`).
    pub heartbeat_interval: Duration,
    /// A socket silent for this long is considered dropped (and becomes resumable).
    pub heartbeat_timeout: Duration,
    /// How long a dropped connection waits for its client to resume before it is destroyed.
    pub resume_window: Duration,
    /// Frames and bytes queued for one socket before its client is deemed too slow and its
    /// socket dropped (resumable). A joining or resuming socket may also hold the session's
    /// description or the events it missed on top.
    pub outbox: Bounds,
    /// Events (and their bytes) kept per connection for replay on resume.
    pub replay: Bounds,
    /// A write to a socket (a batch of frames and its flush) that takes longer than this drops the
    /// socket (resumable): a client that stops reading cannot hold the server's buffers.
    pub write_timeout: Duration,
    pub limits: Limits,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_secs(10),
            heartbeat_timeout: Duration::from_secs(30),
            resume_window: Duration::from_secs(20),
            outbox: Bounds { frames: 1024, bytes: 1024 * 1024 },
            replay: Bounds { frames: 256, bytes: 512 * 1024 },
            write_timeout: Duration::from_secs(10),
            limits: Limits::default(),
        }
    }
}

pub struct Hub {
    rooms: Mutex<HashMap<String, Arc<Room>>>,
    pub config: HubConfig,
    pub(super) router: Arc<dyn MediaRouter>,
    pub(crate) metrics: Arc<Metrics>,
    epochs: AtomicU64,
    /// Live connections per token, across sessions. Taken only while nothing else is locked
    /// after it (a room's lock may be held when it is taken).
    tokens: Mutex<HashMap<TokenKey, usize>>,
}

/// A socket's handle on its connection.
#[derive(Debug, Clone)]
pub struct ConnRef {
    pub session_id: String,
    pub connection_id: String,
    pub epoch: u64,
}

/// What the REST API can name that a live session does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum HubError {
    #[error("no connection {0} in this session")]
    UnknownConnection(String),
    #[error("no stream {0} in this session")]
    UnknownStream(String),
    #[error("{0}")]
    InvalidSignal(String),
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Hub {
    pub fn new(config: HubConfig, router: Arc<dyn MediaRouter>, metrics: Arc<Metrics>) -> Arc<Self> {
        let hub = Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            config,
            router,
            metrics,
            epochs: AtomicU64::new(1),
            tokens: Mutex::new(HashMap::new()),
        });
        hub.listen_to_router();
        hub
    }

    /// The media router's counters, for `/metrics` (`None` without a router).
    pub async fn router_stats(
        &self,
    ) -> Result<Option<crate::media_router::RouterStats>, crate::media_router::MediaError> {
        self.router.stats().await
    }

    pub(super) fn rooms(&self) -> MutexGuard<'_, HashMap<String, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn rooms_snapshot(&self) -> Vec<(String, Arc<Room>)> {
        self.rooms().iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    pub(super) fn next_epoch(&self) -> u64 {
        self.epochs.fetch_add(1, Relaxed)
    }

    pub(super) fn room(&self, session_id: &str) -> Option<Arc<Room>> {
        self.rooms().get(session_id).cloned()
    }

    /// Joins a verified client to its session, unless the session or the token has as many
    /// connections as the limits admit. The receiver's first frame is the `welcome`, then any
    /// `snapshot` pages, and only then the events that follow the join.
    pub fn join(&self, session: Session, grant: &Grant, token: TokenKey) -> Result<(ConnRef, OutboxRx), SigError> {
        let limits = &self.config.limits;
        let epoch = self.epochs.fetch_add(1, Relaxed);
        let connection_id = ids::new_id();
        let resume_token = ids::new_resume_token();
        let mut rooms = self.rooms();
        let (room, created) = match rooms.get(&session.id) {
            Some(room) => (room.clone(), false),
            None => {
                // Checked before creating the room, so a refused join leaves no empty room behind.
                self.take_token_slot(token)?;
                self.metrics.live_sessions.fetch_add(1, Relaxed);
                let room = Arc::new(Room::new(session.clone(), self.config.replay));
                rooms.insert(session.id.clone(), room.clone());
                (room, true)
            }
        };
        let mut st = room.lock();
        drop(rooms);
        if !created {
            if st.conns.len() >= limits.connections_per_session {
                return Err(limits.session_full());
            }
            self.take_token_slot(token)?;
        }
        let mut others: Vec<_> = st.conns.values().map(Conn::info).collect();
        others.sort_by_key(|c| c.created_at);
        let mut frames = Vec::new();
        for (i, p) in pages(&others, &st.streams).into_iter().enumerate() {
            let message = if i == 0 {
                ServerMessage::Welcome {
                    v: PROTOCOL_VERSION,
                    session_id: session.id.clone(),
                    connection_id: connection_id.clone(),
                    resume_token: resume_token.clone(),
                    role: grant.role,
                    connection_data: grant.connection_data.clone(),
                    media_mode: session.media_mode,
                    archive_mode: session.archive_mode,
                    e2ee: session.e2ee(),
                    cipher_suite: session.cipher_suite,
                    heartbeat_interval_ms: millis(self.config.heartbeat_interval),
                    heartbeat_timeout_ms: millis(self.config.heartbeat_timeout),
                    resume_window_ms: millis(self.config.resume_window),
                    connections: p.connections,
                    streams: p.streams,
                    complete: p.complete,
                }
            } else {
                ServerMessage::Snapshot { connections: p.connections, streams: p.streams, complete: p.complete }
            };
            frames.push(Frame::message(&message));
        }
        // The description of the session always fits: the outbox's bounds apply to what follows.
        let (tx, rx) = self.outbox_with_room_for(&frames);
        let mut conn = Conn {
            id: connection_id.clone(),
            role: grant.role,
            data: grant.connection_data.clone(),
            layout: grant.initial_layout_class_list.clone(),
            created_ms: now_millis(),
            resume_token,
            seq: 0,
            replay: VecDeque::new(),
            replay_bytes: 0,
            token,
            subscriptions: 0,
            signals: SignalBudget::new(limits, Instant::now()),
            attached: Some(Attachment { epoch, tx }),
            detached_epoch: None,
            adopted: None,
            token_slot: true,
        };
        for f in frames {
            conn.send(f);
        }
        st.broadcast(&ServerMessage::ConnectionCreated { connection: conn.info() });
        st.conns.insert(connection_id.clone(), conn);
        self.metrics.connections.fetch_add(1, Relaxed);
        Ok((ConnRef { session_id: session.id, connection_id, epoch }, rx))
    }

    /// An outbox with the configured bounds plus room for `first`, which is queued at once.
    fn outbox_with_room_for(&self, first: &[Frame]) -> (Outbox, OutboxRx) {
        let bytes: usize = first.iter().map(Frame::wire_len).sum();
        let bounds =
            Bounds { frames: self.config.outbox.frames + first.len(), bytes: self.config.outbox.bytes + bytes };
        outbox(bounds, self.metrics.clone())
    }

    /// Counts one more connection for `token`, or refuses it at the limit.
    fn take_token_slot(&self, token: TokenKey) -> Result<(), SigError> {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        let n = tokens.entry(token).or_default();
        if *n >= self.config.limits.connections_per_token {
            return Err(self.config.limits.too_many_token_connections());
        }
        *n += 1;
        Ok(())
    }

    pub(super) fn release_token_slot(&self, token: TokenKey) {
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = tokens.get_mut(&token) {
            *n -= 1;
            if *n == 0 {
                tokens.remove(&token);
            }
        }
    }

    /// Reattaches a client whose socket dropped, replaying the events it missed.
    pub fn resume(
        &self,
        session_id: &str,
        connection_id: &str,
        resume_token: &str,
        last_seq: u64,
    ) -> Result<(ConnRef, OutboxRx), SigError> {
        let gone = || {
            SigError::new(
                ErrorCode::ResumeUnknownConnection,
                "no such connection to resume: it ended or its resume window passed; connect again",
            )
        };
        let room = self.room(session_id).ok_or_else(gone)?;
        let mut st = room.lock();
        let conn = st.conns.get_mut(connection_id).ok_or_else(gone)?;
        if !bool::from(conn.resume_token.as_bytes().ct_eq(resume_token.as_bytes())) {
            return Err(SigError::new(ErrorCode::ResumeBadToken, "resume_token does not match this connection"));
        }
        // Only the first resume after a takeover: later ones count as usual (a second resume
        // renumbering again would replay what the client already had).
        if let Some(mirrored) = conn.adopted.take()
            && last_seq > mirrored
        {
            conn.count_on_from(last_seq, mirrored);
        }
        if last_seq > conn.seq {
            let message = format!("last_seq {last_seq} is ahead of the server ({})", conn.seq);
            return Err(SigError::new(ErrorCode::ResumeBadSeq, message));
        }
        let oldest = conn.replay.front().map(|(s, _)| *s).unwrap_or(conn.seq + 1);
        if last_seq + 1 < oldest {
            let message = "events after last_seq are no longer buffered; connect again";
            return Err(SigError::new(ErrorCode::ResumeGap, message));
        }
        let resumed = ServerMessage::Resumed {
            session_id: session_id.to_owned(),
            connection_id: connection_id.to_owned(),
            last_seq: conn.seq,
        };
        let mut frames = vec![Frame::message(&resumed)];
        frames.extend(
            conn.replay
                .iter()
                .filter(|(s, _)| *s > last_seq)
                .map(|(seq, body)| Frame::Event { seq: *seq, body: body.clone() }),
        );
        // What was missed always fits: the outbox's bounds apply to what follows.
        let (tx, rx) = self.outbox_with_room_for(&frames);
        let epoch = self.epochs.fetch_add(1, Relaxed);
        if let Some(old) = conn.attached.take() {
            let _ = old.tx.push(Frame::Close { code: close::REPLACED, reason: "resumed elsewhere" });
        }
        conn.attached = Some(Attachment { epoch, tx });
        conn.detached_epoch = None;
        for f in frames {
            conn.send(f);
        }
        Ok((ConnRef { session_id: session_id.to_owned(), connection_id: connection_id.to_owned(), epoch }, rx))
    }

    /// The socket of `me` ended without a `leave`: keep the connection for the resume window.
    pub fn detach(self: &Arc<Self>, me: &ConnRef) {
        let Some(room) = self.room(&me.session_id) else { return };
        {
            let mut st = room.lock();
            let Some(conn) = st.conns.get_mut(&me.connection_id) else { return };
            if conn.attached.as_ref().is_some_and(|a| a.epoch != me.epoch) {
                return; // a newer socket took over
            }
            conn.attached = None;
            conn.detached_epoch = Some(me.epoch);
        }
        self.reap_later(me.session_id.clone(), me.connection_id.clone(), me.epoch);
    }

    /// Removes the connection after the resume window unless a socket resumed it by then.
    pub(super) fn reap_later(self: &Arc<Self>, session_id: String, connection_id: String, epoch: u64) {
        let hub = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(hub.config.resume_window).await;
            hub.reap(&ConnRef { session_id, connection_id, epoch });
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
        if conn.token_slot {
            self.release_token_slot(conn.token);
        }
        if reason == Reason::ForceDisconnected {
            conn.push_event(&EventBody::new(&ServerMessage::ForcedDisconnect), st.replay);
            conn.send(Frame::Close { code: close::FORCED, reason: "forced disconnect" });
        }
        let ended: Vec<String> = st
            .subs
            .iter()
            .filter(|(_, s)| s.subscriber == connection_id || s.publisher == connection_id)
            .map(|(k, _)| k.clone())
            .collect();
        for subscription_id in ended {
            let Some(s) = st.remove_subscription(&subscription_id) else { continue };
            let other = if s.subscriber == connection_id { s.publisher } else { s.subscriber };
            st.send_to(&other, &ServerMessage::SubscriptionEnded { subscription_id, stream_id: s.stream_id });
        }
        let (gone, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut st.streams).into_iter().partition(|s| s.connection_id == connection_id);
        st.streams = kept;
        for stream in gone {
            st.restarting.remove(&umbra_protocol::MediaTarget::Stream { stream_id: stream.stream_id.clone() });
            self.metrics.streams.fetch_sub(1, Relaxed);
            st.broadcast(&ServerMessage::StreamDestroyed { stream, reason });
        }
        st.broadcast(&ServerMessage::ConnectionDestroyed { connection: conn.info(), reason });
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

    /// Sends a signal to the whole session or to one connection. `from` is `None` for the REST API.
    pub fn signal(
        &self,
        session_id: &str,
        from: Option<&str>,
        to: Option<&str>,
        signal_type: Option<&str>,
        data: &str,
    ) -> Result<(), HubError> {
        rules::signal(signal_type, data).map_err(|e| HubError::InvalidSignal(e.message))?;
        let unknown = |c: &str| HubError::UnknownConnection(c.to_owned());
        let Some(room) = self.room(session_id) else {
            // Nobody connected: a session-wide signal reaches everyone, i.e. no one.
            return to.map_or(Ok(()), |c| Err(unknown(c)));
        };
        let ev = ServerMessage::Signal {
            from: from.map(str::to_owned),
            signal_type: signal_type.unwrap_or_default().to_owned(),
            data: data.to_owned(),
        };
        let mut st = room.lock();
        match to {
            None => st.broadcast(&ev),
            Some(c) if !st.send_to(c, &ev) => return Err(unknown(c)),
            Some(_) => {}
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
            return stream_id.map_or(Ok(0), |s| Err(HubError::UnknownStream(s.to_owned())));
        };
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
        for (stream_id, owner) in &targets {
            st.send_to(owner, &ServerMessage::MuteForced { stream_id: stream_id.clone() });
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
                c.send(Frame::Close { code: close::SERVER_SHUTDOWN, reason: "server shutting down" });
            }
        }
    }
}

impl Hub {
    /// Whether the session has signaling connections (its room exists only while it has).
    pub fn is_live(&self, session_id: &str) -> bool {
        self.rooms().contains_key(session_id)
    }
}
