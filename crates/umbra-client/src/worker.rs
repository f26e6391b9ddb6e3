//! The session thread: signaling, peer connections, codecs and encryption of one session.
//! Everything here runs on that one thread, so no state needs locking except what the handle
//! reads (`Shared`).

use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use str0m::format::Codec as RtpCodec;
use str0m::media::{Frequency, MediaTime};
use umbra_e2ee::{
    BaseKey, CipherSuite, Codec, E2eeEvent, EncryptionSecret, FrameEncryptor, KeyRing,
    StreamDecryptor,
};

use crate::error::ClientError;
use crate::media::opus::{OpusDecoder, OpusEncoder};
use crate::media::vp8::Vp8Decoder;
use crate::peer::Peer;
use crate::publisher::{AudioPipeline, PublisherId, PublisherSettings, Ticker, VideoPipeline};
use crate::session::{
    ConnectedInfo, Connection, Event, PublisherEvent, SessionConfig, Shared, Stream,
    SubscriberEvent, SubscriberId, SubscriberStats, lock,
};

pub(crate) enum Command {
    SetSecret(EncryptionSecret),
    Publish {
        id: PublisherId,
        settings: PublisherSettings,
    },
    Unpublish {
        id: PublisherId,
    },
    Subscribe {
        id: SubscriberId,
        stream_id: String,
    },
    Unsubscribe {
        id: SubscriberId,
    },
    Signal {
        to: Option<String>,
        signal_type: String,
        data: String,
    },
    Disconnect,
}

pub(crate) struct Params {
    pub(crate) session_id: String,
    pub(crate) token: String,
    pub(crate) config: SessionConfig,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) events: Sender<Event>,
    pub(crate) commands: Receiver<Command>,
}

/// Longest the loop sleeps: bounds how late a datagram or a command is handled.
const MAX_SLEEP: Duration = Duration::from_millis(2);
/// At most one key frame request per this interval per subscriber.
const KEY_FRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

pub(crate) fn spawn(p: Params) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("umbra-session".into())
        .spawn(move || {
            let events = p.events.clone();
            let shared = p.shared.clone();
            match crate::signaling::Signaling::connect(
                &p.config.server_url,
                &p.session_id,
                &p.token,
            ) {
                Ok(sig) => Worker::new(p, sig).run(),
                Err(e) => {
                    let _ = events.send(Event::Error(e.clone()));
                    let _ = events.send(Event::Disconnected {
                        reason: e.to_string(),
                    });
                }
            }
            lock(&shared).connected = None;
        })
}

struct Welcome {
    e2ee: bool,
    suite: CipherSuite,
    routed: bool,
    heartbeat: Duration,
}

enum Pending {
    Publish(PublisherId),
    Subscribe(SubscriberId),
    Other,
}

struct Pub {
    video: Option<VideoPipeline>,
    audio: Option<AudioPipeline>,
    fps: u32,
    video_tick: Ticker,
    audio_tick: Ticker,
    video_enc: Option<FrameEncryptor>,
    audio_enc: Option<FrameEncryptor>,
    stream_id: Option<String>,
    upstream: Option<Peer>,
    downstreams: HashMap<String, Peer>,
    failing: bool,
}

struct Sub {
    stream_id: String,
    subscription_id: Option<String>,
    peer: Peer,
    e2ee: bool,
    video_rx: StreamDecryptor,
    audio_rx: StreamDecryptor,
    vdec: Vp8Decoder,
    adec: OpusDecoder,
    stats: SubscriberStats,
    last_key_frame_request: Option<Instant>,
    /// Tracks (bit 0 video, bit 1 audio) whose frames currently fail to authenticate. The
    /// subscriber reports one mismatch when the first track fails and one match when the
    /// last one recovers, not one per track.
    mismatched_tracks: u8,
}

struct Worker {
    config: SessionConfig,
    session_id: String,
    shared: Arc<Mutex<Shared>>,
    events: Sender<Event>,
    commands: Receiver<Command>,
    sig: crate::signaling::Signaling,
    welcome: Option<Welcome>,
    ring: KeyRing,
    base_key: Option<BaseKey>,
    publishers: HashMap<PublisherId, Pub>,
    subscribers: HashMap<SubscriberId, Sub>,
    pending: HashMap<u64, Pending>,
    streams: HashMap<String, Stream>,
    last_ping: Instant,
    done: bool,
    /// Why the session ended, when the server said so (forced disconnect).
    end_reason: Option<String>,
}

impl Worker {
    fn new(p: Params, sig: crate::signaling::Signaling) -> Self {
        Self {
            config: p.config,
            session_id: p.session_id,
            shared: p.shared,
            events: p.events,
            commands: p.commands,
            sig,
            welcome: None,
            ring: KeyRing::new(CipherSuite::default()),
            base_key: None,
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            pending: HashMap::new(),
            streams: HashMap::new(),
            last_ping: Instant::now(),
            done: false,
            end_reason: None,
        }
    }

    fn emit(&self, e: Event) {
        let _ = self.events.send(e);
    }

    fn emit_pub(&self, publisher: PublisherId, event: PublisherEvent) {
        self.emit(Event::Publisher { publisher, event });
    }

    fn emit_sub(&self, subscriber: SubscriberId, event: SubscriberEvent) {
        self.emit(Event::Subscriber { subscriber, event });
    }

    fn run(mut self) {
        let mut reason = "left the session".to_string();
        while !self.done {
            let now = Instant::now();
            loop {
                match self.commands.try_recv() {
                    Ok(cmd) => self.command(cmd, now),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.done = true;
                        break;
                    }
                }
            }
            loop {
                match self.sig.poll() {
                    Ok(Some(msg)) => self.message(msg, now),
                    Ok(None) => break,
                    Err(e) => {
                        reason = e.to_string();
                        self.done = true;
                        break;
                    }
                }
            }
            if let Some(w) = &self.welcome
                && now.duration_since(self.last_ping) >= w.heartbeat
            {
                self.last_ping = now;
                let _ = self.sig.send(json!({"type": "ping"}));
            }
            self.drive_peers(now);
            self.produce_media(now);
            let next = self.next_wakeup(now);
            std::thread::sleep(
                next.saturating_duration_since(Instant::now())
                    .min(MAX_SLEEP),
            );
        }
        for (_, mut p) in self.publishers.drain() {
            p.upstream.iter_mut().for_each(Peer::close);
            p.downstreams.values_mut().for_each(Peer::close);
        }
        for (_, mut s) in self.subscribers.drain() {
            s.peer.close();
        }
        self.sig.close();
        lock(&self.shared).connected = None;
        let reason = self.end_reason.take().unwrap_or(reason);
        self.emit(Event::Disconnected { reason });
    }

    fn next_wakeup(&self, now: Instant) -> Instant {
        let mut next = now + MAX_SLEEP;
        for p in self.publishers.values() {
            for peer in p.upstream.iter().chain(p.downstreams.values()) {
                next = next.min(peer.deadline());
            }
            if p.video.is_some() {
                next = next.min(p.video_tick.next);
            }
            if p.audio.is_some() {
                next = next.min(p.audio_tick.next);
            }
        }
        for s in self.subscribers.values() {
            next = next.min(s.peer.deadline());
        }
        next
    }

    // ---------------------------------------------------------------- commands

    fn command(&mut self, cmd: Command, now: Instant) {
        match cmd {
            Command::SetSecret(secret) => self.apply_secret(&secret, now),
            Command::Publish { id, settings } => {
                if let Err(e) = self.publish(id, settings, now) {
                    self.emit_pub(id, PublisherEvent::Error(e));
                }
            }
            Command::Unpublish { id } => {
                if let Some(mut p) = self.publishers.remove(&id) {
                    if let Some(stream_id) = &p.stream_id {
                        let _ = self
                            .sig
                            .request(json!({"type": "unpublish", "stream_id": stream_id}));
                    }
                    p.upstream.iter_mut().for_each(Peer::close);
                    p.downstreams.values_mut().for_each(Peer::close);
                    self.emit_pub(id, PublisherEvent::Destroyed);
                }
            }
            Command::Subscribe { id, stream_id } => {
                if let Err(e) = self.subscribe(id, &stream_id) {
                    self.emit_sub(id, SubscriberEvent::Error(e));
                }
            }
            Command::Unsubscribe { id } => {
                if let Some(mut s) = self.subscribers.remove(&id) {
                    if let Some(sub) = &s.subscription_id {
                        let _ = self
                            .sig
                            .request(json!({"type": "unsubscribe", "subscription_id": sub}));
                    }
                    s.peer.close();
                    lock(&self.shared).stats.remove(&id);
                    self.emit_sub(id, SubscriberEvent::Destroyed);
                }
            }
            Command::Signal {
                to,
                signal_type,
                data,
            } => {
                let mut msg = json!({"type": "signal", "signal_type": signal_type, "data": data});
                if let Some(to) = to {
                    msg["to"] = json!(to);
                }
                if let Ok(id) = self.sig.request(msg) {
                    self.pending.insert(id, Pending::Other);
                }
            }
            Command::Disconnect => self.done = true,
        }
    }

    /// A new or changed secret: new base key for receiving, and every sending track switches
    /// to a new KID at once and sends a key frame.
    fn apply_secret(&mut self, secret: &EncryptionSecret, now: Instant) {
        let Some(w) = &self.welcome else { return };
        if !w.e2ee {
            return;
        }
        let base = BaseKey::derive(secret, &self.session_id);
        self.ring.set_base_key(base.clone(), now);
        let mut errors = Vec::new();
        for (id, p) in self.publishers.iter_mut() {
            for enc in p.video_enc.iter_mut().chain(p.audio_enc.iter_mut()) {
                if let Err(e) = enc.set_base_key(&base) {
                    errors.push((*id, ClientError::from_e2ee(e)));
                }
            }
            if let Some(v) = &mut p.video {
                v.request_key_frame();
            }
        }
        self.base_key = Some(base);
        for (id, e) in errors {
            self.emit_pub(id, PublisherEvent::Error(e));
        }
    }

    fn publish(
        &mut self,
        id: PublisherId,
        settings: PublisherSettings,
        now: Instant,
    ) -> Result<(), ClientError> {
        let w = self.welcome.as_ref().ok_or(ClientError::NotConnected)?;
        let (e2ee, suite, routed) = (w.e2ee, w.suite, w.routed);
        let base = if e2ee {
            Some(
                self.base_key
                    .clone()
                    .ok_or(ClientError::EncryptionSecretMissing)?,
            )
        } else {
            None
        };
        let has_video = settings.video.is_some();
        let has_audio = settings.audio.is_some();
        if !has_video && !has_audio {
            return Err(ClientError::InvalidArgument(
                "a publisher needs audio, video or both".into(),
            ));
        }
        let (video, fps) = match settings.video {
            Some(src) => {
                let (v, fps) = VideoPipeline::new(src, settings.video_bitrate_kbps)?;
                (Some(v), fps)
            }
            None => (None, 30),
        };
        let audio = match settings.audio {
            Some(capturer) => Some(AudioPipeline {
                capturer,
                encoder: OpusEncoder::new(settings.audio_bitrate_bps)?,
            }),
            None => None,
        };
        let new_enc = |b: &BaseKey| FrameEncryptor::new(suite, b).map_err(ClientError::from_e2ee);
        let video_enc = match (&base, has_video) {
            (Some(b), true) => Some(new_enc(b)?),
            _ => None,
        };
        let audio_enc = match (&base, has_audio) {
            (Some(b), true) => Some(new_enc(b)?),
            _ => None,
        };
        let mut msg = json!({"type": "publish", "stream": {"name": &settings.name, "has_audio": has_audio, "has_video": has_video, "video_type": "camera"}});
        if e2ee {
            msg["stream"]["e2ee"] = json!({"cipher_suite": suite.id()});
        }
        let upstream = if routed {
            let mut peer = Peer::new(self.config.bind_ip)?;
            msg["sdp_offer"] = json!(peer.create_offer(has_audio, has_video, true)?);
            Some(peer)
        } else {
            None
        };
        let req = self.sig.request(msg)?;
        self.pending.insert(req, Pending::Publish(id));
        self.publishers.insert(
            id,
            Pub {
                video,
                audio,
                fps,
                video_tick: Ticker::new(now, Duration::from_secs_f64(1.0 / fps as f64)),
                audio_tick: Ticker::new(now, Duration::from_millis(20)),
                video_enc,
                audio_enc,
                stream_id: None,
                upstream,
                downstreams: HashMap::new(),
                failing: false,
            },
        );
        Ok(())
    }

    fn subscribe(&mut self, id: SubscriberId, stream_id: &str) -> Result<(), ClientError> {
        let w = self.welcome.as_ref().ok_or(ClientError::NotConnected)?;
        if w.e2ee && self.base_key.is_none() {
            return Err(ClientError::EncryptionSecretMissing);
        }
        let e2ee = w.e2ee;
        let stream = self.streams.get(stream_id).ok_or_else(|| {
            ClientError::InvalidArgument(format!("no stream {stream_id} in this session"))
        })?;
        let mut peer = Peer::new(self.config.bind_ip)?;
        let offer = peer.create_offer(stream.has_audio, stream.has_video, false)?;
        let req = self
            .sig
            .request(json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": offer}))?;
        self.pending.insert(req, Pending::Subscribe(id));
        self.subscribers.insert(
            id,
            Sub {
                stream_id: stream_id.to_string(),
                subscription_id: None,
                peer,
                e2ee,
                video_rx: StreamDecryptor::new(Codec::Vp8),
                audio_rx: StreamDecryptor::new(Codec::Opus),
                vdec: Vp8Decoder::new()?,
                adec: OpusDecoder::new()?,
                stats: SubscriberStats::default(),
                last_key_frame_request: None,
                mismatched_tracks: 0,
            },
        );
        Ok(())
    }

    // ---------------------------------------------------------------- signaling

    fn message(&mut self, msg: Value, now: Instant) {
        let kind = msg["type"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "welcome" => self.welcome(&msg, now),
            "ack" => self.ack(&msg),
            "error" => self.request_error(&msg),
            "pong" => {}
            "connection_created" => {
                if let Some(c) = connection(&msg["connection"]) {
                    self.emit(Event::ConnectionCreated(c));
                }
            }
            "connection_destroyed" => {
                if let Some(c) = connection(&msg["connection"]) {
                    self.emit(Event::ConnectionDestroyed {
                        connection: c,
                        reason: msg["reason"].as_str().unwrap_or_default().into(),
                    });
                }
            }
            "stream_created" => {
                if let Some(s) = Stream::from_json(&msg["stream"]) {
                    self.streams.insert(s.stream_id.clone(), s.clone());
                    self.emit(Event::StreamCreated(s));
                }
            }
            "stream_destroyed" => {
                if let Some(s) = Stream::from_json(&msg["stream"]) {
                    self.streams.remove(&s.stream_id);
                    let gone: Vec<_> = self
                        .subscribers
                        .iter()
                        .filter(|(_, sub)| sub.stream_id == s.stream_id)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in gone {
                        if let Some(mut sub) = self.subscribers.remove(&id) {
                            sub.peer.close();
                        }
                        self.emit_sub(id, SubscriberEvent::Destroyed);
                    }
                    self.emit(Event::StreamDestroyed {
                        stream: s,
                        reason: msg["reason"].as_str().unwrap_or_default().into(),
                    });
                }
            }
            "signal" => self.emit(Event::Signal {
                from: msg["from"].as_str().map(str::to_string),
                signal_type: msg["signal_type"].as_str().unwrap_or_default().into(),
                data: msg["data"].as_str().unwrap_or_default().into(),
            }),
            "subscribe_offer" => self.subscribe_offer(&msg),
            "answer" => {
                let sub_id = msg["subscription_id"].as_str().unwrap_or_default();
                if let Some((id, sub)) = self
                    .subscribers
                    .iter_mut()
                    .find(|(_, s)| s.subscription_id.as_deref() == Some(sub_id))
                {
                    let id = *id;
                    if let Err(e) = sub
                        .peer
                        .accept_answer(msg["sdp_answer"].as_str().unwrap_or_default())
                    {
                        self.emit_sub(id, SubscriberEvent::Error(e));
                    }
                }
            }
            "subscription_ended" => {
                let sub_id = msg["subscription_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                for p in self.publishers.values_mut() {
                    if let Some(mut peer) = p.downstreams.remove(&sub_id) {
                        peer.close();
                    }
                }
                if let Some(id) = self
                    .subscribers
                    .iter()
                    .find(|(_, s)| s.subscription_id.as_deref() == Some(sub_id.as_str()))
                    .map(|(id, _)| *id)
                {
                    if let Some(mut s) = self.subscribers.remove(&id) {
                        s.peer.close();
                    }
                    self.emit_sub(id, SubscriberEvent::Destroyed);
                }
            }
            "media_failed" => {
                let err = ClientError::Media(
                    msg["message"]
                        .as_str()
                        .unwrap_or("media connection failed")
                        .into(),
                );
                if let Some(sid) = msg["stream_id"].as_str() {
                    if let Some(id) = self
                        .publishers
                        .iter()
                        .find(|(_, p)| p.stream_id.as_deref() == Some(sid))
                        .map(|(id, _)| *id)
                    {
                        self.emit_pub(id, PublisherEvent::Error(err.clone()));
                    }
                }
                if let Some(sub) = msg["subscription_id"].as_str() {
                    if let Some(id) = self
                        .subscribers
                        .iter()
                        .find(|(_, s)| s.subscription_id.as_deref() == Some(sub))
                        .map(|(id, _)| *id)
                    {
                        self.emit_sub(id, SubscriberEvent::Error(err));
                    }
                }
            }
            "forced_disconnect" => {
                self.end_reason = Some("forced to disconnect by a moderator".into());
                self.done = true;
            }
            "mute_forced" | "stream_property_changed" | "ice" | "resumed" => {}
            _ => {}
        }
    }

    fn welcome(&mut self, msg: &Value, now: Instant) {
        let e2ee = msg["e2ee"].as_bool().unwrap_or(false);
        let suite_id = msg["cipher_suite"]
            .as_u64()
            .unwrap_or(CipherSuite::default().id() as u64) as u16;
        let suite = match CipherSuite::from_id(suite_id) {
            Ok(s) => s,
            Err(_) => {
                self.emit(Event::Error(ClientError::UnsupportedCipherSuite(suite_id)));
                self.done = true;
                return;
            }
        };
        let secret = lock(&self.shared).secret.clone();
        let missing_secret = e2ee && secret.is_none();
        self.ring = KeyRing::new(suite);
        self.welcome = Some(Welcome {
            e2ee,
            suite,
            routed: msg["media_mode"].as_str() == Some("routed"),
            heartbeat: Duration::from_millis(
                msg["heartbeat_interval_ms"]
                    .as_u64()
                    .unwrap_or(10_000)
                    .max(1000),
            ),
        });
        if let Some(secret) = secret {
            self.apply_secret(&secret, now);
        }
        lock(&self.shared).connected = Some(ConnectedInfo { e2ee });
        let connection_id = msg["connection_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.emit(Event::Connected {
            connection_id,
            e2ee,
            cipher_suite: e2ee.then_some(suite.id()),
        });
        if missing_secret {
            // The connection stays up (the app can still see streams, signal, and set a secret
            // now); publishing and subscribing fail with EncryptionSecretMissing until it does.
            self.emit(Event::Error(ClientError::EncryptionSecretMissing));
        }
        for c in msg["connections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(connection)
        {
            self.emit(Event::ConnectionCreated(c));
        }
        for s in msg["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Stream::from_json)
        {
            self.streams.insert(s.stream_id.clone(), s.clone());
            self.emit(Event::StreamCreated(s));
        }
    }

    fn ack(&mut self, msg: &Value) {
        let Some(id) = msg["id"].as_u64() else { return };
        match self.pending.remove(&id) {
            Some(Pending::Publish(pid)) => {
                let Some(p) = self.publishers.get_mut(&pid) else {
                    return;
                };
                let stream_id = msg["stream_id"].as_str().unwrap_or_default().to_string();
                p.stream_id = Some(stream_id.clone());
                let mut err = None;
                if let (Some(peer), Some(answer)) =
                    (p.upstream.as_mut(), msg["sdp_answer"].as_str())
                {
                    err = peer.accept_answer(answer).err();
                }
                self.emit_pub(pid, PublisherEvent::StreamCreated { stream_id });
                if let Some(e) = err {
                    self.emit_pub(pid, PublisherEvent::Error(e));
                }
            }
            Some(Pending::Subscribe(sid)) => {
                let Some(s) = self.subscribers.get_mut(&sid) else {
                    return;
                };
                s.subscription_id = msg["subscription_id"].as_str().map(str::to_string);
                if let Some(answer) = msg["sdp_answer"].as_str()
                    && let Err(e) = s.peer.accept_answer(answer)
                {
                    self.emit_sub(sid, SubscriberEvent::Error(e));
                }
            }
            Some(Pending::Other) | None => {}
        }
    }

    fn request_error(&mut self, msg: &Value) {
        let err = ClientError::Refused {
            code: msg["code"].as_str().unwrap_or("error").into(),
            message: msg["message"].as_str().unwrap_or_default().into(),
        };
        let pending = msg["id"].as_u64().and_then(|id| self.pending.remove(&id));
        match pending {
            Some(Pending::Publish(pid)) => {
                if let Some(mut p) = self.publishers.remove(&pid) {
                    p.upstream.iter_mut().for_each(Peer::close);
                }
                self.emit_pub(pid, PublisherEvent::Error(err));
            }
            Some(Pending::Subscribe(sid)) => {
                if let Some(mut s) = self.subscribers.remove(&sid) {
                    s.peer.close();
                }
                self.emit_sub(sid, SubscriberEvent::Error(err));
            }
            Some(Pending::Other) => self.emit(Event::Error(err)),
            None => {
                // An error without a request id refuses the connection itself.
                self.emit(Event::Error(err));
                if self.welcome.is_none() {
                    self.done = true;
                }
            }
        }
    }

    /// Relayed sessions: a subscriber's offer reaches this publisher.
    fn subscribe_offer(&mut self, msg: &Value) {
        let stream_id = msg["stream_id"].as_str().unwrap_or_default();
        let sub_id = msg["subscription_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let Some((pid, p)) = self
            .publishers
            .iter_mut()
            .find(|(_, p)| p.stream_id.as_deref() == Some(stream_id))
        else {
            return;
        };
        let pid = *pid;
        let result = Peer::new(self.config.bind_ip).and_then(|mut peer| {
            let answer = peer.accept_offer(msg["sdp_offer"].as_str().unwrap_or_default())?;
            Ok((peer, answer))
        });
        match result {
            Ok((peer, answer)) => {
                p.downstreams.insert(sub_id.clone(), peer);
                if let Some(v) = &mut p.video {
                    v.request_key_frame();
                }
                if let Ok(id) = self.sig.request(
                    json!({"type": "answer", "subscription_id": sub_id, "sdp_answer": answer}),
                ) {
                    self.pending.insert(id, Pending::Other);
                }
            }
            Err(e) => self.emit_pub(pid, PublisherEvent::Error(e)),
        }
    }

    // ---------------------------------------------------------------- media

    fn drive_peers(&mut self, now: Instant) {
        let mut events = Vec::new();
        let mut pub_errors = Vec::new();
        for (id, p) in self.publishers.iter_mut() {
            for peer in p.upstream.iter_mut().chain(p.downstreams.values_mut()) {
                events.clear();
                let was_connected = peer.connected;
                if let Err(e) = peer.drive(now, &mut events) {
                    pub_errors.push((*id, e));
                    continue;
                }
                for e in &events {
                    if let str0m::Event::KeyframeRequest(_) = e
                        && let Some(v) = &mut p.video
                    {
                        v.request_key_frame();
                    }
                }
                if !was_connected && peer.connected {
                    if let Some(v) = &mut p.video {
                        v.request_key_frame();
                    }
                    let _ = self.events.send(Event::Publisher {
                        publisher: *id,
                        event: PublisherEvent::MediaConnected,
                    });
                }
            }
            p.downstreams.retain(|_, peer| peer.is_alive());
        }
        for (id, e) in pub_errors {
            self.emit_pub(id, PublisherEvent::Error(e));
        }
        let ids: Vec<SubscriberId> = self.subscribers.keys().copied().collect();
        for id in ids {
            events.clear();
            let Some(s) = self.subscribers.get_mut(&id) else {
                continue;
            };
            let was_connected = s.peer.connected;
            if let Err(e) = s.peer.drive(now, &mut events) {
                self.emit_sub(id, SubscriberEvent::Error(e));
                continue;
            }
            if !was_connected && s.peer.connected {
                self.emit_sub(id, SubscriberEvent::Connected);
            }
            for e in events.drain(..) {
                if let str0m::Event::MediaData(d) = e {
                    self.media_data(id, d, now);
                }
            }
            if let Some(s) = self.subscribers.get(&id) {
                lock(&self.shared).stats.insert(id, s.stats);
            }
        }
    }

    fn media_data(&mut self, id: SubscriberId, d: str0m::media::MediaData, now: Instant) {
        let Some(s) = self.subscribers.get_mut(&id) else {
            return;
        };
        let is_video = Some(d.mid) == s.peer.video_mid;
        let mut out = Vec::new();
        let mut want_key_frame = !d.contiguous && is_video;
        s.stats.bytes_received += d.data.len() as u64;
        if is_video {
            s.stats.video_frames_received += 1;
        }
        let payload = if s.e2ee {
            let rx = if is_video {
                &mut s.video_rx
            } else {
                &mut s.audio_rx
            };
            let track = if is_video { 1u8 } else { 2u8 };
            let result = rx.decrypt(&self.ring, &d.data, now);
            while let Some(ev) = rx.poll_event() {
                match ev {
                    E2eeEvent::EncryptionSecretMismatch => {
                        if s.mismatched_tracks == 0 {
                            out.push(SubscriberEvent::Error(
                                ClientError::EncryptionSecretMismatch,
                            ));
                            out.push(SubscriberEvent::EncryptionSecretMismatch);
                        }
                        s.mismatched_tracks |= track;
                    }
                    E2eeEvent::EncryptionSecretMatch => {
                        let was = s.mismatched_tracks;
                        s.mismatched_tracks &= !track;
                        if was != 0 && s.mismatched_tracks == 0 {
                            out.push(SubscriberEvent::EncryptionSecretMatch);
                        }
                        want_key_frame = true;
                    }
                    E2eeEvent::DecryptionInternalError(e) => out.push(SubscriberEvent::Error(
                        ClientError::DecryptionInternalError(e.to_string()),
                    )),
                }
            }
            match result {
                Ok(p) => Some(p),
                Err(_) => {
                    s.stats.decrypt_failures += 1;
                    None
                }
            }
        } else {
            Some(d.data.to_vec())
        };
        if let Some(payload) = payload {
            if is_video {
                match s.vdec.decode(&payload) {
                    Ok(pics) => {
                        for pic in pics {
                            s.stats.video_frames_decoded += 1;
                            out.push(SubscriberEvent::VideoFrame(pic));
                        }
                    }
                    Err(_) => want_key_frame = true,
                }
            } else if let Ok(frame) = s.adec.decode(&payload) {
                s.stats.audio_frames_decoded += 1;
                out.push(SubscriberEvent::AudioFrame(frame));
            }
        }
        if want_key_frame
            && s.last_key_frame_request
                .is_none_or(|t| now.duration_since(t) >= KEY_FRAME_REQUEST_INTERVAL)
        {
            s.last_key_frame_request = Some(now);
            if let Some(mid) = s.peer.video_mid {
                s.peer.request_key_frame(mid);
            }
        }
        for e in out {
            self.emit_sub(id, e);
        }
    }

    fn produce_media(&mut self, now: Instant) {
        let mut errors = Vec::new();
        for (id, p) in self.publishers.iter_mut() {
            let live = p
                .upstream
                .iter()
                .chain(p.downstreams.values())
                .any(|peer| peer.connected);
            if p.video.is_some() && p.video_tick.due(now) && live {
                let time = MediaTime::from_90khz(p.video_tick.count * 90_000 / p.fps as u64);
                let frames = p.video.as_mut().map(|v| v.next()).unwrap_or(Ok(Vec::new()));
                match frames {
                    Ok(frames) => {
                        for f in frames {
                            if let Err(e) = send(p, true, f, now, time) {
                                errors.push((*id, e));
                            }
                        }
                    }
                    Err(e) => errors.push((*id, e)),
                }
            }
            if p.audio.is_some() && p.audio_tick.due(now) && live {
                let time = MediaTime::new(p.audio_tick.count * 960, Frequency::FORTY_EIGHT_KHZ);
                let a = p.audio.as_mut().expect("checked");
                if let Some(frame) = a.capturer.capture() {
                    match a.encoder.encode(&frame) {
                        Ok(pkt) => {
                            if let Err(e) = send(p, false, pkt, now, time) {
                                errors.push((*id, e));
                            }
                        }
                        Err(e) => errors.push((*id, e.into())),
                    }
                }
            }
        }
        // Report a failing publisher once per run of failures, not per frame.
        let failed: std::collections::HashSet<PublisherId> =
            errors.iter().map(|(id, _)| *id).collect();
        for (id, p) in self.publishers.iter_mut() {
            if !failed.contains(id) {
                p.failing = false;
            }
        }
        for (id, e) in errors {
            if let Some(p) = self.publishers.get_mut(&id)
                && !std::mem::replace(&mut p.failing, true)
            {
                let _ = self.events.send(Event::Publisher {
                    publisher: id,
                    event: PublisherEvent::Error(e),
                });
            }
        }
    }
}

/// Encrypts (in an E2EE session) and writes one encoded frame to every connected peer.
fn send(
    p: &mut Pub,
    video: bool,
    frame: Vec<u8>,
    now: Instant,
    time: MediaTime,
) -> Result<(), ClientError> {
    let enc = if video {
        p.video_enc.as_mut()
    } else {
        p.audio_enc.as_mut()
    };
    let payload = match enc {
        Some(enc) => enc
            .encrypt(if video { Codec::Vp8 } else { Codec::Opus }, &frame)
            .map_err(ClientError::from_e2ee)?,
        None => frame,
    };
    let codec = if video { RtpCodec::Vp8 } else { RtpCodec::Opus };
    for peer in p
        .upstream
        .iter_mut()
        .chain(p.downstreams.values_mut())
        .filter(|peer| peer.connected)
    {
        let mid = if video {
            peer.video_mid
        } else {
            peer.audio_mid
        };
        if let Some(mid) = mid {
            peer.write(mid, codec, now, time, payload.clone())?;
        }
    }
    Ok(())
}

fn connection(v: &Value) -> Option<Connection> {
    Some(Connection {
        connection_id: v["connection_id"].as_str()?.to_string(),
        data: v["data"].as_str().unwrap_or_default().to_string(),
    })
}
