//! `Session`: the application's handle. All network and media work happens on one session
//! thread (see `worker.rs`); the handle talks to it through a command channel and hands events
//! out through a channel.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use umbra_e2ee::EncryptionSecret;
use umbra_protocol::{ConnectionInfo, PropertyChanged, Reason, StreamInfo, VideoDimensions, VideoType};

use crate::error::ClientError;
use crate::media::{AudioFrame, VideoCodec, VideoFrame};
use crate::publisher::{PublishOptions, PublisherId, PublisherSettings, PublisherStats};
use crate::subscriber::{EncodedFrame, SubscribeOptions};
use crate::worker::{self, Command, CommandSender, PreferenceChange};

/// Identifies a subscriber within its session.
pub type SubscriberId = u64;

/// Where the server is and how to reach media.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// `http://host:port` of `umbra serve`.
    pub server_url: String,
    /// Local address for media sockets (loopback by default).
    pub bind_ip: IpAddr,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self { server_url: "http://127.0.0.1:8080".into(), bind_ip: IpAddr::from([127, 0, 0, 1]) }
    }
}

/// Another participant's connection.
#[derive(Debug, Clone, PartialEq)]
pub struct Connection {
    pub connection_id: String,
    /// The token's `connection_data` (empty when it has none).
    pub data: String,
}

impl From<ConnectionInfo> for Connection {
    fn from(c: ConnectionInfo) -> Self {
        Self { connection_id: c.connection_id, data: c.data.unwrap_or_default() }
    }
}

/// A published stream in the session, as it is now (properties its publisher changed
/// included).
#[derive(Debug, Clone, PartialEq)]
pub struct Stream {
    pub stream_id: String,
    pub connection_id: String,
    pub name: String,
    pub has_audio: bool,
    pub has_video: bool,
    pub video_type: VideoType,
    /// The size its publisher reports, if it did.
    pub video_dimensions: Option<VideoDimensions>,
    pub e2ee: bool,
    pub cipher_suite: Option<u16>,
}

impl From<StreamInfo> for Stream {
    fn from(s: StreamInfo) -> Self {
        Self {
            stream_id: s.stream_id,
            connection_id: s.connection_id,
            name: s.name,
            has_audio: s.has_audio,
            has_video: s.has_video,
            video_type: s.video_type,
            video_dimensions: s.video_dimensions,
            e2ee: s.e2ee,
            cipher_suite: s.cipher_suite,
        }
    }
}

impl Stream {
    /// Applies a property change its publisher announced.
    pub(crate) fn apply(&mut self, change: &PropertyChanged) {
        match *change {
            PropertyChanged::HasAudio { new_value, .. } => self.has_audio = new_value,
            PropertyChanged::HasVideo { new_value, .. } => self.has_video = new_value,
            PropertyChanged::VideoDimensions { new_value, .. } => self.video_dimensions = Some(new_value),
        }
    }
}

/// What happens to a publisher.
///
/// Non-exhaustive: later versions report more, so a `match` on it needs a catch-all arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PublisherEvent {
    /// The server accepted the stream.
    StreamCreated {
        stream_id: String,
    },
    /// Media flows to the router (or, relayed, to a subscriber).
    MediaConnected,
    /// A moderator or the REST API muted this publisher's audio (OpenTok's force-mute). The SDK
    /// has already stopped sending audio and told the session (`has_audio` becomes false);
    /// [`Session::set_publish_audio`] turns it back on.
    MuteForced {
        stream_id: String,
    },
    /// The router changed which simulcast layers (rids) some subscriber receives: only these
    /// are encoded and sent now, the others are paused (see [`Session::publisher_stats`]).
    LayersWanted {
        rids: Vec<String>,
    },
    Error(ClientError),
    /// Unpublished, or its stream was ended by the server.
    Destroyed,
}

/// Delivery statistics of a subscriber.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SubscriberStats {
    pub video_frames_received: u64,
    pub video_frames_decoded: u64,
    pub audio_frames_decoded: u64,
    pub bytes_received: u64,
    pub decrypt_failures: u64,
}

/// What happens to a subscriber.
///
/// Non-exhaustive: later versions report more, so a `match` on it needs a catch-all arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SubscriberEvent {
    /// Media connection to the router (or publisher) is up.
    Connected,
    /// A decoded picture (the renderer callback of other SDKs).
    VideoFrame(VideoFrame),
    /// Decoded audio.
    AudioFrame(AudioFrame),
    /// A decrypted, still encoded frame (subscribers with
    /// [`SubscribeOptions::encoded_frames`]).
    EncodedFrame(EncodedFrame),
    /// The codec the stream's video arrives in: reported with its first video frame and
    /// whenever the publisher changes it.
    VideoCodec(VideoCodec),
    /// Frames keep failing to decrypt: the publisher's secret differs. Reported once (after
    /// [`SubscriberEvent::Error`] with [`ClientError::EncryptionSecretMismatch`]). The app should
    /// say "this participant uses another secret".
    EncryptionSecretMismatch,
    /// The publisher declared end-to-end encryption but its frames are not SFrame objects: its
    /// client sends plain media. Reported once per run (after [`SubscriberEvent::Error`] with
    /// [`ClientError::StreamNotEncrypted`]); the plain frames are never decoded nor rendered.
    /// Not a mismatch: no secret would help. The app should say "this participant's app does not
    /// encrypt".
    StreamNotEncrypted,
    /// After [`SubscriberEvent::EncryptionSecretMismatch`] or
    /// [`SubscriberEvent::StreamNotEncrypted`], frames decrypt again. Reported once.
    EncryptionSecretMatch,
    /// What the router now forwards of the stream's video (routed sessions), after a
    /// preference ([`Session::set_preferred_resolution`] and the like) or a bandwidth change:
    /// the simulcast layer (`rid`, `None` for a stream without simulcast), the highest temporal
    /// layer (`None`: all), or `paused` when no video comes at all.
    VideoLayerChanged { rid: Option<String>, temporal_layer: Option<u8>, paused: bool },
    /// Something failed; `MediaFailed` / `MediaClosed` (the router removed this subscriber's
    /// media connection) are followed by `Destroyed`.
    Error(ClientError),
    /// Unsubscribed, or the subscription ended (the stream ended, or its media connection).
    Destroyed,
}

/// Everything a session reports.
///
/// On connecting, `Connected` comes first, then one `ConnectionCreated` for every other
/// connection and one `StreamCreated` for every stream already in the session (however many
/// pages the server describes it in), then the session's events as they happen.
///
/// Non-exhaustive: later versions report more, so a `match` on it needs a catch-all arm.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    Connected {
        connection_id: String,
        e2ee: bool,
        cipher_suite: Option<u16>,
    },
    Disconnected {
        reason: String,
    },
    /// The signaling connection dropped (network loss, or the server asked to resume elsewhere:
    /// a cluster node going away) and the SDK is resuming it, within the server's resume window.
    /// Media keeps flowing; requests fail with [`ClientError::ConnectionInterrupted`] until
    /// [`Event::Reconnected`]. OpenTok's `sessionReconnecting`.
    Reconnecting,
    /// The connection was resumed: the events missed meanwhile follow, in order, and everything
    /// works as before. When the window passes without a resume, [`Event::Disconnected`] comes
    /// instead. OpenTok's `sessionReconnected`.
    Reconnected,
    Error(ClientError),
    ConnectionCreated(Connection),
    ConnectionDestroyed {
        connection: Connection,
        reason: Reason,
    },
    StreamCreated(Stream),
    StreamDestroyed {
        stream: Stream,
        reason: Reason,
    },
    /// A stream's publisher changed whether it sends audio or video, or its video size.
    /// `stream` is the stream with the change applied.
    StreamPropertyChanged {
        stream: Stream,
        change: PropertyChanged,
    },
    /// A signal. `from` is the sender's connection id, `None` for signals the app server sent
    /// with the REST API. In an end-to-end encrypted session `encrypted` says whether it arrived
    /// encrypted and authenticated (docs/e2ee-protocol.md §12): REST signals and signals from
    /// clients that do not encrypt arrive with `encrypted: false`; trust only `true` ones as
    /// unread by the server. Always `false` in other sessions.
    Signal {
        from: Option<String>,
        signal_type: String,
        data: String,
        encrypted: bool,
    },
    /// An encrypted signal that could not be opened, delivered instead of the signal:
    /// `error` is [`ClientError::EncryptionSecretMismatch`] (another secret, or altered, or made
    /// for another session or sender), [`ClientError::ReplayedSignal`],
    /// [`ClientError::EncryptionSecretMissing`] (no secret set) or
    /// [`ClientError::DecryptionInternalError`] (malformed). Its content is never delivered.
    SignalDecryptionFailed {
        from: Option<String>,
        error: ClientError,
    },
    /// The loudest stream of a routed session changed (from the audio levels publishers send,
    /// see [`PublishOptions::audio_level`]); `None` ids when nobody speaks any more.
    ActiveSpeakerChanged {
        stream_id: Option<String>,
        connection_id: Option<String>,
    },
    Publisher {
        publisher: PublisherId,
        event: PublisherEvent,
    },
    Subscriber {
        subscriber: SubscriberId,
        event: SubscriberEvent,
    },
}

/// Shared between the handle and the session thread.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) secret: Option<EncryptionSecret>,
    pub(crate) connected: Option<ConnectedInfo>,
    pub(crate) stats: std::collections::HashMap<SubscriberId, SubscriberStats>,
    pub(crate) publisher_stats: std::collections::HashMap<PublisherId, PublisherStats>,
}

#[derive(Debug, Clone)]
pub(crate) struct ConnectedInfo {
    pub(crate) e2ee: bool,
}

/// A connection to one Umbra session.
pub struct Session {
    api_key: String,
    session_id: String,
    config: SessionConfig,
    shared: Arc<Mutex<Shared>>,
    events_tx: Sender<Event>,
    events_rx: Option<Receiver<Event>>,
    commands: Option<CommandSender>,
    thread: Option<JoinHandle<()>>,
    next_id: AtomicU64,
}

impl Session {
    pub fn new(api_key: &str, session_id: &str, config: SessionConfig) -> Self {
        let (events_tx, events_rx) = mpsc::channel();
        Self {
            api_key: api_key.to_string(),
            session_id: session_id.to_string(),
            config,
            shared: Arc::new(Mutex::new(Shared::default())),
            events_tx,
            events_rx: Some(events_rx),
            commands: None,
            thread: None,
            next_id: AtomicU64::new(1),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The event stream. It can be taken once; events go to it from the session thread.
    pub fn events(&mut self) -> Option<Receiver<Event>> {
        self.events_rx.take()
    }

    /// Sets or changes the shared secret, before connecting or at any time after. Invalid
    /// secrets are refused here, synchronously, and change nothing.
    pub fn set_encryption_secret(&self, secret: &str) -> Result<(), ClientError> {
        let secret = EncryptionSecret::new(secret).map_err(ClientError::from_e2ee)?;
        lock(&self.shared).secret = Some(secret.clone());
        if let Some(tx) = &self.commands {
            let _ = tx.send(Command::SetSecret(secret));
        }
        Ok(())
    }

    /// Connects with a client token. Returns at once; `Event::Connected` or an error follows.
    pub fn connect(&mut self, token: &str) -> Result<(), ClientError> {
        if self.commands.is_some() {
            return Err(ClientError::AlreadyConnected);
        }
        let (tx, rx) = worker::command_channel()
            .map_err(|e| ClientError::Signaling(format!("cannot start the session thread: {e}")))?;
        let handle = worker::spawn(worker::Params {
            session_id: self.session_id.clone(),
            token: token.to_string(),
            config: self.config.clone(),
            shared: self.shared.clone(),
            events: self.events_tx.clone(),
            commands: rx,
        })
        .map_err(|e| ClientError::Signaling(format!("cannot start the session thread: {e}")))?;
        self.commands = Some(tx);
        self.thread = Some(handle);
        Ok(())
    }

    fn command(&self, cmd: Command) -> Result<(), ClientError> {
        self.commands.as_ref().ok_or(ClientError::NotConnected)?.send(cmd).map_err(|_| ClientError::NotConnected)
    }

    fn check_secret_for_media(&self) -> Result<(), ClientError> {
        let shared = lock(&self.shared);
        match &shared.connected {
            Some(info) if info.e2ee && shared.secret.is_none() => Err(ClientError::EncryptionSecretMissing),
            Some(_) => Ok(()),
            None => Err(ClientError::NotConnected),
        }
    }

    /// Publishes audio and/or video. In an end-to-end encrypted session a secret must be set
    /// (`EncryptionSecretMissing` otherwise, also reported as a publisher error event).
    pub fn publish(&self, settings: PublisherSettings) -> Result<PublisherId, ClientError> {
        self.start_publisher(settings, PublishOptions::default(), false)
    }

    /// Publishes like [`Session::publish`] with options: e.g. without simulcast or without
    /// audio levels.
    pub fn publish_with(
        &self,
        settings: PublisherSettings,
        options: PublishOptions,
    ) -> Result<PublisherId, ClientError> {
        self.start_publisher(settings, options, false)
    }

    /// **Test only** (cargo feature `testing-plaintext-publisher`, never enabled by default):
    /// publishes like [`Session::publish`], declaring end-to-end encryption with the session's
    /// cipher suite, but sends the encoded VP8/Opus frames unencrypted. It stands in for a
    /// broken or dishonest client so tests can check that subscribers report
    /// [`SubscriberEvent::StreamNotEncrypted`] and render nothing. An application must never
    /// enable this feature.
    #[cfg(feature = "testing-plaintext-publisher")]
    pub fn publish_plaintext_declaring_e2ee(&self, settings: PublisherSettings) -> Result<PublisherId, ClientError> {
        self.start_publisher(settings, PublishOptions::default(), true)
    }

    fn start_publisher(
        &self,
        settings: PublisherSettings,
        options: PublishOptions,
        plaintext: bool,
    ) -> Result<PublisherId, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.check_secret_for_media() {
            let _ = self.events_tx.send(Event::Publisher { publisher: id, event: PublisherEvent::Error(e.clone()) });
            return Err(e);
        }
        self.command(Command::Publish { id, settings, options, plaintext })?;
        Ok(id)
    }

    pub fn unpublish(&self, publisher: PublisherId) -> Result<(), ClientError> {
        self.command(Command::Unpublish { id: publisher })
    }

    /// Starts or stops sending the publisher's audio (OpenTok's `publishAudio`); on by default.
    /// While off, the capturer is still drained but nothing is encoded or sent, and the
    /// session sees the stream's `has_audio` become false. A publisher without an audio source
    /// stays without audio.
    pub fn set_publish_audio(&self, publisher: PublisherId, enabled: bool) -> Result<(), ClientError> {
        self.command(Command::SetPublishAudio { id: publisher, enabled })
    }

    /// Starts or stops sending the publisher's video (OpenTok's `publishVideo`), like
    /// [`Session::set_publish_audio`]; turning it back on starts with a key frame.
    pub fn set_publish_video(&self, publisher: PublisherId, enabled: bool) -> Result<(), ClientError> {
        self.command(Command::SetPublishVideo { id: publisher, enabled })
    }

    /// Subscribes to a stream. Needs a secret in an end-to-end encrypted session.
    pub fn subscribe(&self, stream_id: &str) -> Result<SubscriberId, ClientError> {
        self.subscribe_with(stream_id, SubscribeOptions::default())
    }

    /// Subscribes with options: e.g. [`SubscribeOptions::encoded_only`] for a recorder that
    /// writes the decrypted frames without decoding them.
    pub fn subscribe_with(&self, stream_id: &str, options: SubscribeOptions) -> Result<SubscriberId, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.check_secret_for_media() {
            let _ = self.events_tx.send(Event::Subscriber { subscriber: id, event: SubscriberEvent::Error(e.clone()) });
            return Err(e);
        }
        self.command(Command::Subscribe { id, stream_id: stream_id.to_string(), options })?;
        Ok(id)
    }

    pub fn unsubscribe(&self, subscriber: SubscriberId) -> Result<(), ClientError> {
        self.command(Command::Unsubscribe { id: subscriber })
    }

    /// Sends a signal to one connection, or to everyone when `to` is `None`. In an end-to-end
    /// encrypted session the type and data are encrypted (docs/e2ee-protocol.md §12): it needs a
    /// secret (`EncryptionSecretMissing`, never sent in the clear), and type and data together
    /// are limited to [`umbra_e2ee::MAX_SIGNAL_PLAINTEXT`] bytes (`InvalidArgument`).
    pub fn send_signal(&self, to: Option<&str>, signal_type: &str, data: &str) -> Result<(), ClientError> {
        {
            let shared = lock(&self.shared);
            if shared.connected.as_ref().is_some_and(|c| c.e2ee) {
                if shared.secret.is_none() {
                    return Err(ClientError::EncryptionSecretMissing);
                }
                let len = signal_type.len() + data.len();
                if len > umbra_e2ee::MAX_SIGNAL_PLAINTEXT {
                    return Err(ClientError::InvalidArgument(format!(
                        "an encrypted signal carries at most {} bytes of type and data; this one has {len}",
                        umbra_e2ee::MAX_SIGNAL_PLAINTEXT
                    )));
                }
            }
        }
        self.command(Command::Signal(crate::worker::OutgoingSignal {
            to: to.map(str::to_string),
            signal_type: signal_type.to_string(),
            data: data.to_string(),
        }))
    }

    /// The largest picture the application wants of a subscriber's video (OpenTok's
    /// `setPreferredResolution`), `None` for no limit: the router forwards the smallest
    /// simulcast layer at least this large both ways (or the largest), and reports what it
    /// forwards with [`SubscriberEvent::VideoLayerChanged`]. Routed sessions only (a relayed
    /// stream has one size). Remembered: it reaches the router once the subscription exists,
    /// and again after the connection is resumed or its media moves to another router.
    /// `InvalidArgument` for a zero size (reported as a subscriber error event).
    pub fn set_preferred_resolution(
        &self,
        subscriber: SubscriberId,
        max: Option<(u32, u32)>,
    ) -> Result<(), ClientError> {
        self.command(Command::SetVideoPreference { id: subscriber, change: PreferenceChange::Resolution(max) })
    }

    /// The most frames per second wanted of a subscriber's video (OpenTok's
    /// `setPreferredFrameRate`), 1 to 240, `None` for all; as
    /// [`Session::set_preferred_resolution`].
    pub fn set_preferred_frame_rate(&self, subscriber: SubscriberId, max: Option<u32>) -> Result<(), ClientError> {
        self.command(Command::SetVideoPreference { id: subscriber, change: PreferenceChange::FrameRate(max) })
    }

    /// Whether to receive a subscriber's video at all (OpenTok's `subscribeToVideo`); audio
    /// continues either way. As [`Session::set_preferred_resolution`].
    pub fn set_subscribe_to_video(&self, subscriber: SubscriberId, video: bool) -> Result<(), ClientError> {
        self.command(Command::SetVideoPreference { id: subscriber, change: PreferenceChange::Video(video) })
    }

    /// What a publisher's video encoders did, per simulcast layer (empty if unknown).
    pub fn publisher_stats(&self, publisher: PublisherId) -> PublisherStats {
        lock(&self.shared).publisher_stats.get(&publisher).cloned().unwrap_or_default()
    }

    /// Delivery statistics of a subscriber (zeros if unknown).
    pub fn subscriber_stats(&self, subscriber: SubscriberId) -> SubscriberStats {
        lock(&self.shared).stats.get(&subscriber).copied().unwrap_or_default()
    }

    /// Leaves the session and waits for the session thread to finish.
    pub fn disconnect(&mut self) {
        if let Some(tx) = self.commands.take() {
            let _ = tx.send(Command::Disconnect);
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.disconnect();
    }
}

pub(crate) fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    // A panic on the session thread must not take the handle down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
