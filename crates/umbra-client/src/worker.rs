//! The session thread: signaling, peer connections, codecs and encryption of one session.
//! Everything here runs on that one thread, so no state needs locking except what the handle
//! reads (`Shared`). What the server sends is handled in `inbound`.

mod commands;
mod inbound;
mod preference;
mod restart;
mod resume;
mod signals;
mod wait;

use std::collections::{HashMap, HashSet};
use std::sync::mpsc::{Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use str0m::format::Codec as RtpCodec;
use str0m::media::{Frequency, MediaTime, Rid};
use umbra_e2ee::{BaseKey, CipherSuite, Codec, E2eeEvent, EncryptionSecret, FrameEncryptor, KeyRing, StreamDecryptor};
use umbra_protocol::{ClientMessage, E2eeDeclaration, PropertyChange, PublishStream, VideoDimensions, VideoType};

use crate::error::ClientError;
use crate::media::keyframe::is_key_frame;
use crate::media::level;
use crate::media::opus::{OpusDecoder, OpusEncoder};
use crate::media::{Codec as FrameCodec, VideoCodec, VideoDecoder};
use crate::peer::Peer;
use crate::publisher::{
    AudioPipeline, OutFrame, PublishOptions, PublisherId, PublisherSettings, Ticker, VideoPipeline,
};
use crate::session::{
    Connection, Event, PublisherEvent, SessionConfig, Shared, Stream, SubscriberEvent, SubscriberId, SubscriberStats,
    lock,
};
use crate::subscriber::{EncodedFrame, SubscribeOptions};

pub(crate) use commands::{CommandReceiver, CommandSender, channel as command_channel};
pub(crate) use preference::Change as PreferenceChange;
pub(crate) use signals::Outgoing as OutgoingSignal;

pub(crate) enum Command {
    SetSecret(EncryptionSecret),
    /// `plaintext`: declare E2EE but send frames unencrypted; only the test feature
    /// `testing-plaintext-publisher` sets it.
    Publish {
        id: PublisherId,
        settings: PublisherSettings,
        options: PublishOptions,
        plaintext: bool,
    },
    Unpublish {
        id: PublisherId,
    },
    SetPublishAudio {
        id: PublisherId,
        enabled: bool,
    },
    SetPublishVideo {
        id: PublisherId,
        enabled: bool,
    },
    Subscribe {
        id: SubscriberId,
        stream_id: String,
        options: SubscribeOptions,
    },
    Unsubscribe {
        id: SubscriberId,
    },
    SetVideoPreference {
        id: SubscriberId,
        change: preference::Change,
    },
    Signal(signals::Outgoing),
    Disconnect,
}

pub(crate) struct Params {
    pub(crate) session_id: String,
    pub(crate) token: String,
    pub(crate) config: SessionConfig,
    pub(crate) shared: Arc<Mutex<Shared>>,
    pub(crate) events: Sender<Event>,
    pub(crate) commands: CommandReceiver,
}

/// Longest the thread waits in poll(2) when no deadline is nearer. Datagrams, signaling and
/// commands wake it at once; this only bounds how late anything without a wake-up of its own
/// would be noticed.
const MAX_WAIT: Duration = Duration::from_millis(50);
/// At most one key frame request per this interval per subscriber.
const KEY_FRAME_REQUEST_INTERVAL: Duration = Duration::from_millis(300);

pub(crate) fn spawn(p: Params) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("umbra-session".into()).spawn(move || {
        let events = p.events.clone();
        let shared = p.shared.clone();
        match crate::signaling::Signaling::connect(&p.config.server_url, &p.session_id, &p.token) {
            Ok(sig) => Worker::new(p, sig).run(),
            Err(e) => {
                let _ = events.send(Event::Error(e.clone()));
                let _ = events.send(Event::Disconnected { reason: e.to_string() });
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
    heartbeat_timeout: Duration,
}

/// What a request in flight was for: where its `ack` goes and whom its `error` concerns.
enum Pending {
    Publish(PublisherId),
    Subscribe(SubscriberId),
    /// A request on behalf of a publisher (`answer`, `set_stream_property`).
    ForPublisher(PublisherId),
    /// A request of the session (`signal`, `unpublish`, `unsubscribe`).
    ForSession,
    /// `renegotiate` after `media_restart`.
    Renegotiate(restart::Restart, umbra_protocol::MediaTarget),
    /// `set_video_preference` of a subscriber.
    Preference(SubscriberId),
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
    /// Whether the application wants audio / video sent (`set_publish_*`; a forced mute turns
    /// audio off). Off: the sources are drained, nothing is encoded or sent.
    audio_on: bool,
    video_on: bool,
    /// What the session was last told of `has_audio` / `has_video` (in `publish`, then by
    /// `set_stream_property`).
    announced_audio: bool,
    announced_video: bool,
    /// How many times `media_restart` began a new upstream (see `restart`).
    restarts: u32,
    /// The new upstream of a restart, until the router's answer makes it `upstream`.
    replacement: Option<Peer>,
}

impl Pub {
    fn close_peers(&mut self) {
        self.upstream.iter_mut().chain(self.replacement.iter_mut()).for_each(Peer::close);
        self.downstreams.values_mut().for_each(Peer::close);
    }
}

struct Sub {
    stream_id: String,
    subscription_id: Option<String>,
    peer: Peer,
    e2ee: bool,
    options: SubscribeOptions,
    /// The codec the video arrives in (from the payload type of each frame), with its
    /// decryptor and decoder; replaced when a frame arrives in another codec.
    video: Option<VideoRx>,
    audio_rx: StreamDecryptor,
    adec: OpusDecoder,
    stats: SubscriberStats,
    last_key_frame_request: Option<Instant>,
    /// Tracks (bit 0 video, bit 1 audio) whose frames currently fail to authenticate. The
    /// subscriber reports one mismatch when the first track fails and one match when the
    /// last one recovers, not one per track.
    mismatched_tracks: u8,
    /// Tracks (same bits) reported as not encrypted: a lying publisher sends both tracks in
    /// the clear, and the app is told once per stream, not once per track.
    unencrypted_tracks: u8,
    /// The tracks the subscription's offer asked for; a restart's offer asks for the same.
    offered_audio: bool,
    offered_video: bool,
    /// How many times `media_restart` began a new peer connection (see `restart`).
    restarts: u32,
    /// The new peer connection of a restart, until the router's answer makes it `peer`.
    replacement: Option<Peer>,
    /// What the application wants of the video (routed sessions), and whether the router has it.
    preference: preference::PreferenceState,
}

struct VideoRx {
    codec: VideoCodec,
    decryptor: StreamDecryptor,
    /// Created with the first frame to decode (none for an `encoded_only` subscriber).
    decoder: Option<VideoDecoder>,
}

impl VideoRx {
    fn new(codec: VideoCodec) -> Self {
        Self { codec, decryptor: StreamDecryptor::new(codec.framing()), decoder: None }
    }
}

struct Worker {
    config: SessionConfig,
    session_id: String,
    shared: Arc<Mutex<Shared>>,
    events: Sender<Event>,
    commands: CommandReceiver,
    sig: crate::signaling::Signaling,
    welcome: Option<Welcome>,
    ring: KeyRing,
    base_key: Option<BaseKey>,
    signals: signals::Signals,
    publishers: HashMap<PublisherId, Pub>,
    subscribers: HashMap<SubscriberId, Sub>,
    pending: HashMap<u64, Pending>,
    /// The session as this client knows it: every other connection and every stream.
    connections: HashMap<String, Connection>,
    streams: HashMap<String, Stream>,
    /// Between a `welcome` with `complete: false` and the `snapshot` page that completes it.
    describing: bool,
    /// Message types this SDK does not know that it has reported already (once each).
    unknown_kinds: HashSet<String>,
    /// The `seq` of the latest event processed.
    last_seq: u64,
    last_ping: Instant,
    /// When the socket last brought anything (see `resume::silent_for_too_long`).
    last_received: Instant,
    /// From `welcome`: what resuming the connection takes.
    credentials: Option<resume::Credentials>,
    resuming: Option<resume::Resuming>,
    /// `media_restart`s whose `renegotiate` could not be sent or answered because the socket
    /// dropped; redone after the resume.
    restarts_waiting: Vec<umbra_protocol::MediaTarget>,
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
            signals: signals::Signals::default(),
            publishers: HashMap::new(),
            subscribers: HashMap::new(),
            pending: HashMap::new(),
            connections: HashMap::new(),
            streams: HashMap::new(),
            describing: false,
            unknown_kinds: HashSet::new(),
            last_seq: 0,
            last_ping: Instant::now(),
            last_received: Instant::now(),
            credentials: None,
            resuming: None,
            restarts_waiting: Vec::new(),
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
            self.commands.clear_wake();
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
            while !self.done {
                match self.sig.poll() {
                    Ok(Some(text)) => {
                        self.last_received = now;
                        self.message(&text, now);
                    }
                    Ok(None) => break,
                    Err(end) => {
                        reason.clone_from(&end.message);
                        self.socket_ended(end, now);
                        break;
                    }
                }
            }
            if self.silent_for_too_long(now) {
                self.sig.drop_socket();
                let message = "nothing arrived from the server within the heartbeat timeout".to_string();
                self.socket_ended(crate::signaling::SocketEnd { resumable: true, message }, now);
            }
            self.drive_resume(now);
            self.flush_preferences();
            if let Some(w) = &self.welcome
                && self.resuming.is_none()
                && now.duration_since(self.last_ping) >= w.heartbeat
            {
                self.last_ping = now;
                let _ = self.sig.send(&ClientMessage::Ping { id: None });
            }
            self.drive_peers(now);
            self.produce_media(now);
            if !self.done {
                let next = self.next_wakeup(now);
                self.wait(next);
            }
        }
        for (_, mut p) in self.publishers.drain() {
            p.close_peers();
        }
        for (_, mut s) in self.subscribers.drain() {
            s.peer.close();
        }
        self.sig.close();
        lock(&self.shared).connected = None;
        let reason = self.end_reason.take().unwrap_or(reason);
        tracing::debug!("session ended after event {}: {reason}", self.last_seq);
        self.emit(Event::Disconnected { reason });
    }

    fn next_wakeup(&self, now: Instant) -> Instant {
        let mut next = now + MAX_WAIT;
        if let Some(w) = &self.welcome {
            next = next.min(self.last_ping + w.heartbeat);
        }
        if let Some(t) = self.resume_wakeup() {
            next = next.min(t);
        }
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
            Command::Publish { id, settings, options, plaintext } => {
                if let Err(e) = self.publish(id, settings, options, plaintext, now) {
                    self.emit_pub(id, PublisherEvent::Error(e));
                }
            }
            Command::Unpublish { id } => {
                if let Some(mut p) = self.publishers.remove(&id) {
                    if let Some(stream_id) = p.stream_id.take() {
                        self.session_request(ClientMessage::Unpublish { id: None, stream_id });
                    }
                    p.close_peers();
                    lock(&self.shared).publisher_stats.remove(&id);
                    self.emit_pub(id, PublisherEvent::Destroyed);
                }
            }
            Command::SetPublishAudio { id, enabled } => {
                if let Some(p) = self.publishers.get_mut(&id) {
                    p.audio_on = enabled;
                    self.sync_properties(id);
                }
            }
            Command::SetPublishVideo { id, enabled } => {
                if let Some(p) = self.publishers.get_mut(&id) {
                    if enabled
                        && !p.video_on
                        && let Some(v) = &mut p.video
                    {
                        // Subscribers have nothing to decode from until the next key frame.
                        v.request_key_frame(None);
                    }
                    p.video_on = enabled;
                    self.sync_properties(id);
                }
            }
            Command::Subscribe { id, stream_id, options } => {
                if let Err(e) = self.subscribe(id, &stream_id, options) {
                    self.emit_sub(id, SubscriberEvent::Error(e));
                }
            }
            Command::Unsubscribe { id } => {
                if let Some(mut s) = self.subscribers.remove(&id) {
                    if let Some(subscription_id) = s.subscription_id.take() {
                        self.session_request(ClientMessage::Unsubscribe { id: None, subscription_id });
                    }
                    s.peer.close();
                    lock(&self.shared).stats.remove(&id);
                    self.emit_sub(id, SubscriberEvent::Destroyed);
                }
            }
            Command::SetVideoPreference { id, change } => {
                if let Some(s) = self.subscribers.get_mut(&id)
                    && let Err(e) = s.preference.apply(change)
                {
                    self.emit_sub(id, SubscriberEvent::Error(e));
                }
            }
            Command::Signal(out) => self.send_signal(out),
            Command::Disconnect => self.done = true,
        }
    }

    /// Sends a request whose refusal is the session's to report. A socket that is gone is
    /// noticed (and reported) by the next `poll`.
    fn session_request(&mut self, msg: ClientMessage) {
        if let Ok(id) = self.sig.request(msg) {
            self.pending.insert(id, Pending::ForSession);
        }
    }

    /// Tells the session what a publisher now sends, once the server knows its stream: what
    /// the application wants, for the tracks the publisher has.
    fn sync_properties(&mut self, id: PublisherId) {
        let Some(p) = self.publishers.get_mut(&id) else {
            return;
        };
        let Some(stream_id) = p.stream_id.clone() else {
            return;
        };
        let audio = p.audio.is_some() && p.audio_on;
        let video = p.video.is_some() && p.video_on;
        let mut changes = Vec::new();
        if audio != std::mem::replace(&mut p.announced_audio, audio) {
            changes.push(PropertyChange::HasAudio(audio));
        }
        if video != std::mem::replace(&mut p.announced_video, video) {
            changes.push(PropertyChange::HasVideo(video));
        }
        for change in changes {
            let msg = ClientMessage::SetStreamProperty { id: None, stream_id: stream_id.clone(), change };
            match self.sig.request(msg) {
                Ok(req) => {
                    self.pending.insert(req, Pending::ForPublisher(id));
                }
                Err(e) => self.emit_pub(id, PublisherEvent::Error(e)),
            }
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
                v.request_key_frame(None);
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
        options: PublishOptions,
        plaintext: bool,
        now: Instant,
    ) -> Result<(), ClientError> {
        let w = self.welcome.as_ref().ok_or(ClientError::NotConnected)?;
        let (e2ee, suite, routed) = (w.e2ee, w.suite, w.routed);
        let base = if e2ee { Some(self.base_key.clone().ok_or(ClientError::EncryptionSecretMissing)?) } else { None };
        // The test-only lying publisher: no encryptors (frames go out as encoded), while the
        // `publish` below still declares E2EE because `e2ee` is unchanged.
        let base = base.filter(|_| !plaintext);
        let has_video = settings.video.is_some();
        let has_audio = settings.audio.is_some();
        if !has_video && !has_audio {
            return Err(ClientError::InvalidArgument("a publisher needs audio, video or both".into()));
        }
        let (video, fps) = match settings.video {
            Some(src) => {
                // Simulcast needs a router to choose among the layers; relayed subscribers
                // would each receive all of them.
                let simulcast = options.simulcast && routed;
                let (v, fps) = VideoPipeline::new(src, settings.video_codec, settings.video_bitrate_kbps, simulcast)?;
                (Some(v), fps)
            }
            None => (None, 30),
        };
        let audio = match settings.audio {
            Some(capturer) => Some(AudioPipeline {
                capturer,
                encoder: OpusEncoder::new(settings.audio_bitrate_bps)?,
                send_level: options.audio_level,
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
        let codecs: Vec<VideoCodec> = video.iter().map(VideoPipeline::codec).collect();
        let rids = video.as_ref().map(VideoPipeline::rids).unwrap_or_default();
        let video_dimensions =
            video.as_ref().and_then(VideoPipeline::dimensions).map(|(width, height)| VideoDimensions { width, height });
        let (upstream, sdp_offer) = if routed {
            let mut peer = Peer::new(self.config.bind_ip, &codecs)?;
            let offer = peer.create_offer(has_audio, has_video, true, &rids)?;
            (Some(peer), Some(offer))
        } else {
            // Relayed: each subscriber's offer comes to us as `subscribe_offer`.
            (None, None)
        };
        let req = self.sig.request(ClientMessage::Publish {
            id: None,
            stream: PublishStream {
                name: Some(settings.name),
                has_audio,
                has_video,
                video_type: Some(VideoType::Camera),
                video_dimensions,
                e2ee: e2ee.then(|| E2eeDeclaration { cipher_suite: suite.id() }),
            },
            sdp_offer,
        })?;
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
                audio_on: true,
                video_on: true,
                announced_audio: has_audio,
                announced_video: has_video,
                restarts: 0,
                replacement: None,
            },
        );
        Ok(())
    }

    fn subscribe(&mut self, id: SubscriberId, stream_id: &str, options: SubscribeOptions) -> Result<(), ClientError> {
        let w = self.welcome.as_ref().ok_or(ClientError::NotConnected)?;
        if w.e2ee && self.base_key.is_none() {
            return Err(ClientError::EncryptionSecretMissing);
        }
        let e2ee = w.e2ee;
        let stream = self
            .streams
            .get(stream_id)
            .ok_or_else(|| ClientError::InvalidArgument(format!("no stream {stream_id} in this session")))?;
        // Every codec this SDK decodes: the stream carries whichever its publisher chose.
        let mut peer = Peer::new(self.config.bind_ip, &VideoCodec::ALL)?;
        let (offered_audio, offered_video) = (stream.has_audio, stream.has_video);
        let offer = peer.create_offer(offered_audio, offered_video, false, &[])?;
        let req = self.sig.request(ClientMessage::Subscribe {
            id: None,
            stream_id: stream_id.to_string(),
            sdp_offer: offer,
        })?;
        self.pending.insert(req, Pending::Subscribe(id));
        self.subscribers.insert(
            id,
            Sub {
                stream_id: stream_id.to_string(),
                subscription_id: None,
                peer,
                e2ee,
                options,
                video: None,
                audio_rx: StreamDecryptor::new(Codec::Opus),
                adec: OpusDecoder::new()?,
                stats: SubscriberStats::default(),
                last_key_frame_request: None,
                mismatched_tracks: 0,
                unencrypted_tracks: 0,
                offered_audio,
                offered_video,
                restarts: 0,
                replacement: None,
                preference: preference::PreferenceState::default(),
            },
        );
        Ok(())
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
                    // A request names the simulcast layer whose subscribers lost pictures:
                    // only that layer's encoder makes a key frame.
                    if let str0m::Event::KeyframeRequest(r) = e
                        && let Some(v) = &mut p.video
                    {
                        v.request_key_frame(r.rid);
                    }
                }
                if !was_connected && peer.connected {
                    if let Some(v) = &mut p.video {
                        v.request_key_frame(None);
                    }
                    // A restarted upstream is the same publisher's media, back: not news.
                    if p.restarts == 0 {
                        let event = PublisherEvent::MediaConnected;
                        let _ = self.events.send(Event::Publisher { publisher: *id, event });
                    }
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
            if !was_connected && s.peer.connected && s.restarts == 0 {
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
        let codec = if is_video {
            s.stats.video_frames_received += 1;
            // The payload type names the codec; only those this subscriber offered can arrive.
            let Some(codec) = VideoCodec::from_rtp(d.params.spec().codec) else {
                return;
            };
            if s.video.as_ref().map(|v| v.codec) != Some(codec) {
                s.video = Some(VideoRx::new(codec));
                out.push(SubscriberEvent::VideoCodec(codec));
            }
            FrameCodec::Video(codec)
        } else {
            FrameCodec::Opus
        };
        let payload = if s.e2ee {
            let rx = match &mut s.video {
                Some(v) if is_video => &mut v.decryptor,
                _ => &mut s.audio_rx,
            };
            let track = if is_video { 1u8 } else { 2u8 };
            let result = rx.decrypt(&self.ring, &d.data, now);
            while let Some(ev) = rx.poll_event() {
                match ev {
                    E2eeEvent::EncryptionSecretMismatch => {
                        // A publisher already known to send plain media gets no mismatch on its
                        // other track: "check the secret" would be the wrong advice.
                        if s.mismatched_tracks == 0 && s.unencrypted_tracks == 0 {
                            out.push(SubscriberEvent::Error(ClientError::EncryptionSecretMismatch));
                            out.push(SubscriberEvent::EncryptionSecretMismatch);
                        }
                        s.mismatched_tracks |= track;
                    }
                    E2eeEvent::EncryptionSecretMatch => {
                        let was = s.mismatched_tracks | s.unencrypted_tracks;
                        s.mismatched_tracks &= !track;
                        s.unencrypted_tracks &= !track;
                        if was != 0 && (s.mismatched_tracks | s.unencrypted_tracks) == 0 {
                            out.push(SubscriberEvent::EncryptionSecretMatch);
                        }
                        want_key_frame = true;
                    }
                    E2eeEvent::DecryptionInternalError(e) => {
                        out.push(SubscriberEvent::Error(ClientError::DecryptionInternalError(e.to_string())))
                    }
                    // Its own event, never a mismatch: no secret the user could enter would make
                    // these frames decrypt. They failed to decrypt, so none reaches the decoder.
                    E2eeEvent::StreamNotEncrypted => {
                        if s.unencrypted_tracks == 0 {
                            out.push(SubscriberEvent::Error(ClientError::StreamNotEncrypted));
                            out.push(SubscriberEvent::StreamNotEncrypted);
                        }
                        s.unencrypted_tracks |= track;
                    }
                    _ => {}
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
            if s.options.decode {
                match &mut s.video {
                    Some(v) if is_video => {
                        if v.decoder.is_none() {
                            match VideoDecoder::new(v.codec) {
                                Ok(dec) => v.decoder = Some(dec),
                                Err(e) => out.push(SubscriberEvent::Error(e.into())),
                            }
                        }
                        match v.decoder.as_mut().map(|dec| dec.decode(&payload)) {
                            Some(Ok(pics)) => {
                                for pic in pics {
                                    s.stats.video_frames_decoded += 1;
                                    out.push(SubscriberEvent::VideoFrame(pic));
                                }
                            }
                            Some(Err(_)) => want_key_frame = true,
                            None => {}
                        }
                    }
                    _ => {
                        if let Ok(frame) = s.adec.decode(&payload) {
                            s.stats.audio_frames_decoded += 1;
                            out.push(SubscriberEvent::AudioFrame(frame));
                        }
                    }
                }
            }
            if s.options.encoded_frames {
                let keyframe = match codec {
                    FrameCodec::Video(c) => is_key_frame(c, &payload),
                    _ => true,
                };
                out.push(SubscriberEvent::EncodedFrame(EncodedFrame {
                    kind: codec.kind(),
                    codec,
                    rtp_timestamp: d.time.numer(),
                    clock_rate: d.time.frequency().get(),
                    keyframe,
                    contiguous: d.contiguous,
                    received: d.network_time,
                    data: payload,
                }));
            }
        }
        if want_key_frame
            && s.last_key_frame_request.is_none_or(|t| now.duration_since(t) >= KEY_FRAME_REQUEST_INTERVAL)
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
        let mut pub_stats = Vec::new();
        for (id, p) in self.publishers.iter_mut() {
            let live = p.upstream.iter().chain(p.downstreams.values()).any(|peer| peer.connected);
            if p.video.is_some() && p.video_tick.due(now) && live {
                let time = MediaTime::from_90khz(p.video_tick.count * 90_000 / p.fps as u64);
                let frames = match p.video.as_mut() {
                    Some(v) if p.video_on => v.next(),
                    // Off: take the picture so an application capturer's queue does not grow.
                    Some(v) => {
                        v.skip();
                        Ok(Vec::new())
                    }
                    None => Ok(Vec::new()),
                };
                match frames {
                    Ok(frames) => {
                        for OutFrame { rid, data } in frames {
                            if let Err(e) = send(p, Track::Video(rid), data, now, time) {
                                errors.push((*id, e));
                            }
                        }
                    }
                    Err(e) => errors.push((*id, e)),
                }
                if let Some(v) = &p.video {
                    pub_stats.push((*id, v.stats()));
                }
            }
            if p.audio.is_some() && p.audio_tick.due(now) && live {
                let time = MediaTime::new(p.audio_tick.count * 960, Frequency::FORTY_EIGHT_KHZ);
                let a = p.audio.as_mut().expect("checked");
                // Off (muted, or forced to mute): the samples are taken and dropped, so an
                // audio device's capture queue does not grow while nothing is sent.
                if let Some(frame) = a.capturer.capture()
                    && p.audio_on
                {
                    let level = a.send_level.then(|| {
                        let l = level::audio_level(&frame.samples);
                        (l, level::voice_activity(l))
                    });
                    match a.encoder.encode(&frame) {
                        Ok(pkt) => {
                            if let Err(e) = send(p, Track::Audio(level), pkt, now, time) {
                                errors.push((*id, e));
                            }
                        }
                        Err(e) => errors.push((*id, e.into())),
                    }
                }
            }
        }
        if !pub_stats.is_empty() {
            lock(&self.shared).publisher_stats.extend(pub_stats);
        }
        // Report a failing publisher once per run of failures, not per frame.
        let failed: std::collections::HashSet<PublisherId> = errors.iter().map(|(id, _)| *id).collect();
        for (id, p) in self.publishers.iter_mut() {
            if !failed.contains(id) {
                p.failing = false;
            }
        }
        for (id, e) in errors {
            if let Some(p) = self.publishers.get_mut(&id)
                && !std::mem::replace(&mut p.failing, true)
            {
                let _ = self.events.send(Event::Publisher { publisher: id, event: PublisherEvent::Error(e) });
            }
        }
    }
}

/// Which track a frame goes on, with what its RTP packets carry besides it.
#[derive(Clone, Copy)]
enum Track {
    /// Video, on a simulcast layer (`Some` rid) or not.
    Video(Option<Rid>),
    /// Audio, with its RFC 6464 level (-dBov, voice activity) when the publisher sends levels.
    Audio(Option<(u8, bool)>),
}

/// Encrypts (in an E2EE session) and writes one encoded frame to every connected peer.
///
/// Every simulcast layer goes through the one video `FrameEncryptor`: its frame counter runs
/// across layers, so no two frames of any layer share a counter under a key (AES-CTR keystream
/// reuse otherwise), and the subscriber's replay window, which sees whichever layer the router
/// forwards, sees counters rise.
fn send(p: &mut Pub, track: Track, frame: Vec<u8>, now: Instant, time: MediaTime) -> Result<(), ClientError> {
    let video_codec = p.video.as_ref().map(VideoPipeline::codec).unwrap_or_default();
    let video = matches!(track, Track::Video(_));
    let (framing, codec) =
        if video { (video_codec.framing(), video_codec.rtp()) } else { (Codec::Opus, RtpCodec::Opus) };
    let enc = if video { p.video_enc.as_mut() } else { p.audio_enc.as_mut() };
    let payload = match enc {
        Some(enc) => enc.encrypt(framing, &frame).map_err(ClientError::from_e2ee)?,
        None => frame,
    };
    let (rid, level) = match track {
        Track::Video(rid) => (rid, None),
        Track::Audio(level) => (None, level),
    };
    // A layer exists only on the routed upstream (simulcast is never offered to relayed
    // subscribers' peer connections).
    let downstreams = p.downstreams.values_mut().filter(|_| rid.is_none());
    for peer in p.upstream.iter_mut().chain(downstreams).filter(|peer| peer.connected) {
        let mid = if video { peer.video_mid } else { peer.audio_mid };
        if let Some(mid) = mid {
            peer.write(mid, codec, now, time, payload.clone(), rid, level)?;
        }
    }
    Ok(())
}
