//! `Session`, `Publisher`, `Subscriber` and the dispatch thread that turns the native SDK's
//! events into listener calls.
//!
//! Threads, as in the C SDK: the native SDK runs one session thread (network, codecs,
//! encryption). This module adds one dispatch thread per session (`umbra-dispatch`) that runs
//! every listener call of that session, publishers' and subscribers' included, one at a time in
//! event order, never while an SDK lock is held, so listeners may call back into the SDK. A
//! listener that throws is reported on stderr and the dispatch thread carries on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use umbra_client::media::pattern::Tone;
use umbra_client::{
    ClientError, Event, PropertyChanged, PublisherEvent, PublisherId, SessionConfig, SubscriberEvent, SubscriberId,
    TestPatternCapturer, ToneCapturer, VideoSource,
};

use crate::error::{ErrorInfo, Family, UmbraError};
use crate::media::{
    AudioQueue, AudioQueueReader, AudioRenderer, FrameSink, SinkReader, VideoCapturer, VideoRenderer, pcm_bytes,
};
use crate::types::{
    AudioSourceKind, CaptureSettings, Connection, PublishOptions, PublisherSettings, Stream, SubscriberStats,
    VideoFrame, VideoLayer, VideoSourceKind,
};
use crate::{guarded, lock};

/// A session's events. Calls run on the session's dispatch thread.
#[uniffi::export(with_foreign)]
pub trait SessionListener: Send + Sync {
    /// Connected: publish and subscribe now. `connection_id` is this client's.
    fn on_connected(&self, connection_id: String);
    /// Disconnected (asked for, or the server or network ended it). Publishers and subscribers
    /// of the session have stopped.
    fn on_disconnected(&self);
    /// E.g. `EncryptionSecretMissing` after connecting to an end-to-end encrypted session
    /// without a secret (the session stays connected: set one, then publish), or
    /// `AuthorizationFailure`.
    fn on_error(&self, error: ErrorInfo);
    fn on_connection_created(&self, connection: Connection);
    fn on_connection_dropped(&self, connection: Connection);
    /// A stream appeared, this client's own included.
    fn on_stream_received(&self, stream: Stream);
    fn on_stream_dropped(&self, stream: Stream);
    fn on_stream_has_audio_changed(&self, stream: Stream, has_audio: bool);
    fn on_stream_has_video_changed(&self, stream: Stream, has_video: bool);
    fn on_stream_video_dimensions_changed(&self, stream: Stream, width: u32, height: u32);
    /// `from` is `None` when the server sent it.
    fn on_signal_received(&self, signal_type: String, data: String, from: Option<Connection>);
    /// The loudest stream of a routed session changed (ranked by the audio levels publishers
    /// send, see `PublishOptions::audio_level`): its stream and connection ids, both `None` when
    /// nobody speaks any more. This client's own stream may be named.
    fn on_active_speaker_changed(&self, stream_id: Option<String>, connection_id: Option<String>);
}

/// A publisher's events, on its session's dispatch thread.
#[uniffi::export(with_foreign)]
pub trait PublisherListener: Send + Sync {
    fn on_stream_created(&self, stream: Stream);
    /// Unpublished, or its stream was ended by the server.
    fn on_stream_destroyed(&self, stream: Stream);
    /// E.g. `EncryptionSecretMissing` when publishing without a secret, `EncryptionInternalError`.
    fn on_error(&self, error: ErrorInfo);
    /// A moderator muted this publisher's audio; `set_publish_audio(true)` unmutes.
    fn on_mute_forced(&self);
}

/// A subscriber's events, on its session's dispatch thread.
#[uniffi::export(with_foreign)]
pub trait SubscriberListener: Send + Sync {
    /// Media flows.
    fn on_connected(&self);
    /// The subscription ended (the stream ended, or its media connection).
    fn on_disconnected(&self);
    /// `EncryptionSecretMismatch` once when the stream does not decrypt with this secret (then
    /// `on_encryption_secret_mismatch`), `StreamNotEncrypted` once when its publisher sends plain
    /// media, `DecryptionInternalError`, `EncryptionSecretMissing`.
    fn on_error(&self, error: ErrorInfo);
    fn on_encryption_secret_mismatch(&self);
    /// Frames decrypt again after a mismatch (or after plain media).
    fn on_encryption_secret_match(&self);
    /// What the router now forwards of the stream's video, after a preference of this
    /// subscriber (`set_preferred_resolution` and the like) or a bandwidth change.
    fn on_video_layer_changed(&self, layer: VideoLayer);
}

/// Where the server is.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct SessionOptions {
    pub api_key: String,
    pub session_id: String,
    /// `http://host:port` of `umbra serve`.
    pub server_url: String,
    /// Local address media sockets bind to; `None` for 127.0.0.1.
    pub bind_ip: Option<String>,
}

/// Calls to make on the dispatch thread besides native events: errors of `publish` and
/// `subscribe` that the object's listener must see too, and the end of an unpublished stream.
enum Job {
    PublisherError(Arc<PublisherCore>, ErrorInfo),
    PublisherDestroyed(Arc<PublisherCore>, Stream),
    SubscriberError(Arc<SubscriberCore>, ErrorInfo),
}

/// What the session object, its publishers and subscribers, and the dispatch thread share.
pub(crate) struct Shared {
    /// `None` once the session is being closed.
    native: Mutex<Option<umbra_client::Session>>,
    listener: Arc<dyn SessionListener>,
    publishers: Mutex<HashMap<PublisherId, Arc<PublisherCore>>>,
    subscribers: Mutex<HashMap<SubscriberId, Arc<SubscriberCore>>>,
    jobs: Mutex<Vec<Job>>,
    connection_id: Mutex<Option<String>>,
    /// The connected session is end-to-end encrypted (what this client's streams declare).
    e2ee: AtomicBool,
    dispatch_thread: Mutex<Option<ThreadId>>,
}

impl Shared {
    pub(crate) fn with_native<T>(
        &self,
        f: impl FnOnce(&mut umbra_client::Session) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        match lock(&self.native).as_mut() {
            Some(s) => f(s),
            None => Err(ClientError::NotConnected),
        }
    }
}

/// A connection to one Umbra session.
#[derive(uniffi::Object)]
pub struct Session {
    shared: Arc<Shared>,
    session_id: String,
    dispatch: Mutex<Option<JoinHandle<()>>>,
}

/// How often the dispatch thread looks for jobs when no event arrives.
const JOB_POLL: Duration = Duration::from_millis(20);

#[uniffi::export]
impl Session {
    /// A session object for `session_id` on the server at `server_url`. Nothing is sent until
    /// `connect`.
    #[uniffi::constructor]
    pub fn new(options: SessionOptions, listener: Arc<dyn SessionListener>) -> Result<Arc<Self>, UmbraError> {
        let url = options.server_url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
            return Err(UmbraError::invalid(format!("server URL {:?}: expected http://host:port", options.server_url)));
        }
        if options.api_key.is_empty() || options.session_id.is_empty() {
            return Err(UmbraError::invalid("the API key and the session id must not be empty"));
        }
        let bind_ip = match &options.bind_ip {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(ip) => {
                ip.parse().map_err(|_| UmbraError::invalid(format!("bind address {ip:?} is not an IP address")))?
            }
        };
        let config = SessionConfig { server_url: url.to_string(), bind_ip };
        let mut native = umbra_client::Session::new(&options.api_key, &options.session_id, config);
        let events = native.events().ok_or_else(|| UmbraError::Internal { message: "no event channel".into() })?;
        let shared = Arc::new(Shared {
            native: Mutex::new(Some(native)),
            listener,
            publishers: Mutex::default(),
            subscribers: Mutex::default(),
            jobs: Mutex::default(),
            connection_id: Mutex::default(),
            e2ee: AtomicBool::new(false),
            dispatch_thread: Mutex::default(),
        });
        let dispatcher = Dispatcher { shared: shared.clone(), connections: HashMap::new(), streams: HashMap::new() };
        let dispatch = std::thread::Builder::new()
            .name("umbra-dispatch".into())
            .spawn(move || dispatcher.run(events))
            .map_err(|e| UmbraError::Internal { message: format!("cannot start the dispatch thread: {e}") })?;
        *lock(&shared.dispatch_thread) = Some(dispatch.thread().id());
        Ok(Arc::new(Session { shared, session_id: options.session_id, dispatch: Mutex::new(Some(dispatch)) }))
    }

    pub fn session_id(&self) -> String {
        self.session_id.clone()
    }

    /// This client's connection id while connected.
    pub fn connection_id(&self) -> Option<String> {
        lock(&self.shared.connection_id).clone()
    }

    /// Sets or changes the shared secret (8 to 256 characters), before connecting or at any time
    /// after. An invalid secret is refused here with `InvalidEncryptionSecret` and changes
    /// nothing; it is not reported to the listener.
    pub fn set_encryption_secret(&self, secret: String) -> Result<(), UmbraError> {
        let result = match lock(&self.shared.native).as_mut() {
            Some(s) => s.set_encryption_secret(&secret),
            // A closed session: the rule is still checked first, so a bad secret is reported as one.
            None => umbra_client::Session::new("-", "-", SessionConfig::default())
                .set_encryption_secret(&secret)
                .and(Err(ClientError::NotConnected)),
        };
        result.map_err(|e| UmbraError::from_client(&e, Family::Session))
    }

    /// Connects with a client token. Returns at once; `on_connected` or `on_error` follows.
    pub fn connect(&self, token: String) -> Result<(), UmbraError> {
        if token.trim().is_empty() {
            return Err(UmbraError::invalid("the token is empty"));
        }
        self.shared.with_native(|s| s.connect(&token)).map_err(|e| UmbraError::from_client(&e, Family::Session))
    }

    /// Leaves the session: publishers and subscribers stop, `on_disconnected` follows. The
    /// session may connect again.
    pub fn disconnect(&self) {
        // Under the lock while it waits for the session thread: that thread never waits for
        // this lock nor for the dispatch thread, whose listeners may call in meanwhile.
        if let Some(native) = lock(&self.shared.native).as_mut() {
            native.disconnect();
        }
    }

    /// Publishes. In an end-to-end encrypted session a secret must be set:
    /// `EncryptionSecretMissing` otherwise, also reported to the publisher's `on_error`.
    /// Simulcast and audio levels on (`publish_with` to turn them off).
    pub fn publish(&self, publisher: Arc<Publisher>) -> Result<(), UmbraError> {
        self.publish_with(publisher, PublishOptions::default())
    }

    /// Publishes as `publish` does, with or without simulcast and audio levels.
    pub fn publish_with(&self, publisher: Arc<Publisher>, options: PublishOptions) -> Result<(), UmbraError> {
        let core = &publisher.core;
        let fail = |e: UmbraError| {
            let info = ErrorInfo { code: e.code(), message: e.to_string() };
            lock(&self.shared.jobs).push(Job::PublisherError(core.clone(), info));
            e
        };
        if lock(&core.state).published.is_some() {
            return Err(fail(UmbraError::illegal("this publisher is already published")));
        }
        let (settings, sink) = core.native_settings().map_err(fail)?;
        let id = {
            // Registered under the same lock as the call, so its first event finds it.
            let mut publishers = lock(&self.shared.publishers);
            let id = self.shared.with_native(|s| s.publish_with(settings, options.into())).map_err(|e| {
                let info = Family::Publisher.info(&e);
                lock(&self.shared.jobs).push(Job::PublisherError(core.clone(), info));
                UmbraError::from_client(&e, Family::Publisher)
            })?;
            publishers.insert(id, core.clone());
            id
        };
        {
            let mut st = lock(&core.state);
            st.published = Some((Arc::downgrade(&self.shared), id));
            st.stream = None;
        }
        let (audio, video) = {
            let st = lock(&core.state);
            (st.publish_audio, st.publish_video)
        };
        if !audio {
            let _ = self.shared.with_native(|s| s.set_publish_audio(id, false));
        }
        if !video {
            let _ = self.shared.with_native(|s| s.set_publish_video(id, false));
        }
        if let (Some(capturer), Some(sink)) = (&core.capturer, sink) {
            let c = capturer.clone();
            let started = guarded(move || c.start_capture(sink)).unwrap_or(false);
            if !started {
                self.stop_publisher(core, id, false);
                return Err(fail(UmbraError::Internal { message: "the video capturer did not start".into() }));
            }
            core.capturing.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Stops publishing; `on_stream_destroyed` follows, and no other call of the publisher's
    /// listener after this returns.
    pub fn unpublish(&self, publisher: Arc<Publisher>) -> Result<(), UmbraError> {
        let core = &publisher.core;
        let id = match &lock(&core.state).published {
            Some((shared, id)) if std::ptr::eq(shared.as_ptr(), Arc::as_ptr(&self.shared)) => *id,
            _ => return Err(UmbraError::illegal("this publisher is not published in this session")),
        };
        self.stop_publisher(core, id, true);
        Ok(())
    }

    /// Subscribes. Needs a secret in an end-to-end encrypted session (`EncryptionSecretMissing`,
    /// also reported to the subscriber's `on_error`).
    pub fn subscribe(&self, subscriber: Arc<Subscriber>) -> Result<(), UmbraError> {
        let core = &subscriber.core;
        // Held until the subscription is recorded: a wish made meanwhile waits for it.
        let mut st = lock(&core.state);
        if st.subscribed.is_some() {
            let e = UmbraError::illegal("this subscriber is already subscribed");
            let info = ErrorInfo { code: e.code(), message: e.to_string() };
            lock(&self.shared.jobs).push(Job::SubscriberError(core.clone(), info));
            return Err(e);
        }
        let mut subscribers = lock(&self.shared.subscribers);
        let wishes = st.wishes;
        let id = self
            .shared
            .with_native(|s| {
                let id = s.subscribe(&core.stream.stream_id)?;
                // Only fails when the session thread has ended, which ends the subscription too.
                let _ = wishes.apply_changes(&Default::default(), s, id);
                Ok(id)
            })
            .map_err(|e| {
                let info = Family::Subscriber.info(&e);
                lock(&self.shared.jobs).push(Job::SubscriberError(core.clone(), info));
                UmbraError::from_client(&e, Family::Subscriber)
            })?;
        subscribers.insert(id, core.clone());
        st.subscribed = Some((Arc::downgrade(&self.shared), id));
        Ok(())
    }

    /// Ends a subscription; no call of the subscriber's listener or renderers after this returns
    /// (except one already running on the dispatch thread).
    pub fn unsubscribe(&self, subscriber: Arc<Subscriber>) -> Result<(), UmbraError> {
        let core = &subscriber.core;
        // Taken in its own statement: a guard in the match scrutinee would still be held in the
        // arm that puts the value back, and lock the same mutex again (a deadlock).
        let subscribed = lock(&core.state).subscribed.take();
        let id = match subscribed {
            Some((shared, id)) if std::ptr::eq(shared.as_ptr(), Arc::as_ptr(&self.shared)) => id,
            other => {
                lock(&core.state).subscribed = other;
                return Err(UmbraError::illegal("this subscriber is not subscribed in this session"));
            }
        };
        lock(&self.shared.subscribers).remove(&id);
        let _ = self.shared.with_native(|s| s.unsubscribe(id));
        Ok(())
    }

    /// Sends a signal to everyone, or to one connection.
    pub fn send_signal(
        &self,
        signal_type: String,
        data: String,
        to_connection_id: Option<String>,
    ) -> Result<(), UmbraError> {
        self.shared
            .with_native(|s| s.send_signal(to_connection_id.as_deref(), &signal_type, &data))
            .map_err(|e| UmbraError::from_client(&e, Family::Session))
    }
}

impl Session {
    fn stop_publisher(&self, core: &Arc<PublisherCore>, id: PublisherId, report: bool) {
        lock(&self.shared.publishers).remove(&id);
        let _ = self.shared.with_native(|s| s.unpublish(id));
        let stream = core.end();
        if let (true, Some(stream)) = (report, stream) {
            lock(&self.shared.jobs).push(Job::PublisherDestroyed(core.clone(), stream));
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // Dropping the native session ends its thread and its event channel, which ends the
        // dispatch thread: after this, no listener of the session runs (unless this drop runs
        // on the dispatch thread itself, which cannot wait for itself).
        let native = lock(&self.shared.native).take();
        drop(native);
        let handle = lock(&self.dispatch).take();
        if let Some(h) = handle
            && Some(std::thread::current().id()) != *lock(&self.shared.dispatch_thread)
        {
            let _ = h.join();
        }
    }
}

struct PubState {
    published: Option<(Weak<Shared>, PublisherId)>,
    stream: Option<Stream>,
    publish_audio: bool,
    publish_video: bool,
}

pub(crate) struct PublisherCore {
    settings: PublisherSettings,
    capturer: Option<Arc<dyn VideoCapturer>>,
    listener: Arc<dyn PublisherListener>,
    audio_queue: Arc<AudioQueue>,
    state: Mutex<PubState>,
    capturing: AtomicBool,
}

impl PublisherCore {
    fn native_settings(&self) -> Result<(umbra_client::PublisherSettings, Option<Arc<FrameSink>>), UmbraError> {
        let s = &self.settings;
        let mut sink = None;
        let video = match s.video {
            VideoSourceKind::None => None,
            VideoSourceKind::TestPattern { width, height, fps } => {
                let c = CaptureSettings { width, height, fps }.check()?;
                Some(VideoSource::Raw(Box::new(TestPatternCapturer::new(c.width, c.height, c.fps))))
            }
            VideoSourceKind::Capturer => {
                let capturer = self.capturer.clone().ok_or_else(|| UmbraError::invalid("no video capturer"))?;
                let settings = guarded(move || capturer.capture_settings())
                    .ok_or_else(|| UmbraError::Internal {
                        message: "the video capturer's capture_settings failed".into(),
                    })?
                    .check()?;
                let s = FrameSink::new(settings);
                sink = Some(s.clone());
                Some(VideoSource::Raw(Box::new(SinkReader(s))))
            }
        };
        let audio: Option<Box<dyn umbra_client::AudioCapturer>> = match s.audio {
            AudioSourceKind::None => None,
            AudioSourceKind::Tone { frequency_hz } => Some(Box::new(ToneCapturer(Tone::new(frequency_hz)))),
            AudioSourceKind::External => Some(Box::new(AudioQueueReader(self.audio_queue.clone()))),
        };
        let settings = umbra_client::PublisherSettings {
            name: s.name.clone(),
            video,
            audio,
            video_bitrate_kbps: s.video_bitrate_kbps,
            audio_bitrate_bps: 32_000,
            video_codec: s.video_codec.into(),
        };
        Ok((settings, sink))
    }

    /// Marks the publisher unpublished and stops its capturer; returns its stream if it had one.
    fn end(&self) -> Option<Stream> {
        let stream = {
            let mut st = lock(&self.state);
            st.published = None;
            st.stream.take()
        };
        if self.capturing.swap(false, Ordering::AcqRel)
            && let Some(c) = self.capturer.clone()
        {
            guarded(move || c.stop_capture());
        }
        stream
    }
}

/// What a session publishes: the settings, an optional application capturer, and a listener.
#[derive(uniffi::Object)]
pub struct Publisher {
    core: Arc<PublisherCore>,
}

#[uniffi::export]
impl Publisher {
    /// `capturer` is required when `settings.video` is `Capturer` and refused otherwise.
    #[uniffi::constructor]
    pub fn new(
        settings: PublisherSettings,
        capturer: Option<Arc<dyn VideoCapturer>>,
        listener: Arc<dyn PublisherListener>,
    ) -> Result<Arc<Self>, UmbraError> {
        match (&settings.video, &capturer) {
            (VideoSourceKind::Capturer, None) => {
                return Err(UmbraError::invalid("video source Capturer without a capturer"));
            }
            (VideoSourceKind::None | VideoSourceKind::TestPattern { .. }, Some(_)) => {
                return Err(UmbraError::invalid("a capturer given with a video source other than Capturer"));
            }
            (VideoSourceKind::TestPattern { width, height, fps }, None) => {
                CaptureSettings { width: *width, height: *height, fps: *fps }.check()?;
            }
            _ => {}
        }
        if let AudioSourceKind::Tone { frequency_hz } = settings.audio
            && !(20.0..=20_000.0).contains(&frequency_hz)
        {
            return Err(UmbraError::invalid(format!("a tone of {frequency_hz} Hz: it must be 20 to 20000 Hz")));
        }
        if settings.video == VideoSourceKind::None && settings.audio == AudioSourceKind::None {
            return Err(UmbraError::invalid("a publisher needs audio, video or both"));
        }
        if !(50..=20_000).contains(&settings.video_bitrate_kbps) {
            return Err(UmbraError::invalid(format!(
                "video bitrate {} kb/s: it must be 50 to 20000",
                settings.video_bitrate_kbps
            )));
        }
        Ok(Arc::new(Publisher {
            core: Arc::new(PublisherCore {
                settings,
                capturer,
                listener,
                audio_queue: Arc::default(),
                state: Mutex::new(PubState { published: None, stream: None, publish_audio: true, publish_video: true }),
                capturing: AtomicBool::new(false),
            }),
        }))
    }

    /// Its stream once the server accepted it.
    pub fn stream(&self) -> Option<Stream> {
        lock(&self.core.state).stream.clone()
    }

    pub fn name(&self) -> String {
        self.core.settings.name.clone()
    }

    /// Starts or stops sending audio (works before publishing too).
    pub fn set_publish_audio(&self, enabled: bool) -> Result<(), UmbraError> {
        self.set_flag(enabled, true)
    }

    /// Starts or stops sending video; resuming starts with a key frame.
    pub fn set_publish_video(&self, enabled: bool) -> Result<(), UmbraError> {
        self.set_flag(enabled, false)
    }

    pub fn publish_audio(&self) -> bool {
        lock(&self.core.state).publish_audio
    }

    pub fn publish_video(&self) -> bool {
        lock(&self.core.state).publish_video
    }

    /// Audio for a publisher whose audio source is `External`: 48 kHz mono signed 16-bit
    /// little-endian PCM, any length of whole samples; the encoder takes 20 ms at a time and at
    /// most one second waits (older samples are dropped).
    pub fn write_audio(&self, pcm: Vec<u8>) -> Result<(), UmbraError> {
        if self.core.settings.audio != AudioSourceKind::External {
            return Err(UmbraError::illegal("this publisher's audio source is not External"));
        }
        self.core.audio_queue.write(&pcm)
    }
}

impl Publisher {
    fn set_flag(&self, enabled: bool, audio: bool) -> Result<(), UmbraError> {
        let target = {
            let mut st = lock(&self.core.state);
            if audio {
                st.publish_audio = enabled;
            } else {
                st.publish_video = enabled;
            }
            st.published.as_ref().and_then(|(w, id)| w.upgrade().map(|s| (s, *id)))
        };
        if let Some((shared, id)) = target {
            shared
                .with_native(
                    |s| if audio { s.set_publish_audio(id, enabled) } else { s.set_publish_video(id, enabled) },
                )
                .map_err(|e| UmbraError::from_client(&e, Family::Publisher))?;
        }
        Ok(())
    }
}

pub(crate) struct SubState {
    pub(crate) subscribed: Option<(Weak<Shared>, SubscriberId)>,
    pub(crate) wishes: umbra_client::VideoPreference,
}

pub(crate) struct SubscriberCore {
    stream: Stream,
    listener: Arc<dyn SubscriberListener>,
    renderer: Option<Arc<dyn VideoRenderer>>,
    audio: Option<Arc<dyn AudioRenderer>>,
    pub(crate) state: Mutex<SubState>,
}

/// A subscription to one stream: a listener, and optional video and audio renderers.
#[derive(uniffi::Object)]
pub struct Subscriber {
    pub(crate) core: Arc<SubscriberCore>,
}

#[uniffi::export]
impl Subscriber {
    #[uniffi::constructor]
    pub fn new(
        stream: Stream,
        listener: Arc<dyn SubscriberListener>,
        renderer: Option<Arc<dyn VideoRenderer>>,
        audio_renderer: Option<Arc<dyn AudioRenderer>>,
    ) -> Result<Arc<Self>, UmbraError> {
        if stream.stream_id.is_empty() {
            return Err(UmbraError::invalid("the stream has no id"));
        }
        Ok(Arc::new(Subscriber {
            core: Arc::new(SubscriberCore {
                stream,
                listener,
                renderer,
                audio: audio_renderer,
                state: Mutex::new(SubState { subscribed: None, wishes: Default::default() }),
            }),
        }))
    }

    pub fn stream(&self) -> Stream {
        self.core.stream.clone()
    }

    /// Delivery statistics (zeros when not subscribed).
    pub fn stats(&self) -> SubscriberStats {
        let target = lock(&self.core.state).subscribed.as_ref().and_then(|(w, id)| w.upgrade().map(|s| (s, *id)));
        match target {
            Some((shared, id)) => {
                shared.with_native(|s| Ok(s.subscriber_stats(id))).map(Into::into).unwrap_or_default()
            }
            None => SubscriberStats::default(),
        }
    }
}

struct Dispatcher {
    shared: Arc<Shared>,
    /// Known connections' data, for the streams and signals that name them.
    connections: HashMap<String, String>,
    /// Streams as the listener was given them, kept up to date with property changes.
    streams: HashMap<String, Stream>,
}

impl Dispatcher {
    fn run(mut self, events: Receiver<Event>) {
        loop {
            // Jobs come from calls the application made after earlier events, so events already
            // queued go first: e.g. the session's EncryptionSecretMissing (sent with Connected)
            // before the publisher's, when the application publishes from on_connected.
            let jobs = std::mem::take(&mut *lock(&self.shared.jobs));
            let mut ended = false;
            loop {
                match events.try_recv() {
                    Ok(event) => self.event(event),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        ended = true;
                        break;
                    }
                }
            }
            for job in jobs {
                self.job(job);
            }
            if ended {
                break;
            }
            match events.recv_timeout(JOB_POLL) {
                Ok(event) => self.event(event),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        let jobs = std::mem::take(&mut *lock(&self.shared.jobs));
        for job in jobs {
            self.job(job);
        }
    }

    fn job(&self, job: Job) {
        match job {
            Job::PublisherError(p, e) => {
                guarded(move || p.listener.on_error(e));
            }
            Job::PublisherDestroyed(p, s) => {
                guarded(move || p.listener.on_stream_destroyed(s));
            }
            Job::SubscriberError(s, e) => {
                guarded(move || s.listener.on_error(e));
            }
        }
    }

    fn stream(&self, s: &umbra_client::Stream) -> Stream {
        Stream::from_native(s, self.connections.get(&s.connection_id).map(String::as_str).unwrap_or(""))
    }

    fn event(&mut self, event: Event) {
        let l = self.shared.listener.clone();
        match event {
            Event::Connected { connection_id, e2ee, .. } => {
                *lock(&self.shared.connection_id) = Some(connection_id.clone());
                self.shared.e2ee.store(e2ee, Ordering::Release);
                guarded(move || l.on_connected(connection_id));
            }
            Event::Disconnected { .. } => {
                let pubs: Vec<_> = lock(&self.shared.publishers).drain().map(|(_, p)| p).collect();
                for p in pubs {
                    p.end();
                }
                let subs: Vec<_> = lock(&self.shared.subscribers).drain().map(|(_, s)| s).collect();
                for s in subs {
                    lock(&s.state).subscribed = None;
                }
                *lock(&self.shared.connection_id) = None;
                self.streams.clear();
                self.connections.clear();
                guarded(move || l.on_disconnected());
            }
            // An encrypted signal that did not open (docs/e2ee-protocol.md §12): a session error
            // with its reason, so these bindings never drop it silently.
            Event::Error(e) | Event::SignalDecryptionFailed { error: e, .. } => {
                let info = Family::Session.info(&e);
                guarded(move || l.on_error(info));
            }
            Event::ConnectionCreated(c) => {
                self.connections.insert(c.connection_id.clone(), c.data.clone());
                let c = Connection { connection_id: c.connection_id, data: c.data };
                guarded(move || l.on_connection_created(c));
            }
            Event::ConnectionDestroyed { connection, .. } => {
                self.connections.remove(&connection.connection_id);
                let c = Connection { connection_id: connection.connection_id, data: connection.data };
                guarded(move || l.on_connection_dropped(c));
            }
            Event::StreamCreated(s) => {
                let s = self.stream(&s);
                self.streams.insert(s.stream_id.clone(), s.clone());
                guarded(move || l.on_stream_received(s));
            }
            Event::StreamDestroyed { stream, .. } => {
                let s = self.streams.remove(&stream.stream_id).unwrap_or_else(|| self.stream(&stream));
                guarded(move || l.on_stream_dropped(s));
            }
            Event::StreamPropertyChanged { stream, change } => {
                let s = self.stream(&stream);
                self.streams.insert(s.stream_id.clone(), s.clone());
                match change {
                    PropertyChanged::HasAudio { new_value, .. } => {
                        guarded(move || l.on_stream_has_audio_changed(s, new_value));
                    }
                    PropertyChanged::HasVideo { new_value, .. } => {
                        guarded(move || l.on_stream_has_video_changed(s, new_value));
                    }
                    PropertyChanged::VideoDimensions { new_value, .. } => {
                        guarded(move || l.on_stream_video_dimensions_changed(s, new_value.width, new_value.height));
                    }
                }
            }
            Event::Signal { from, signal_type, data, .. } => {
                let from = from.map(|id| Connection {
                    data: self.connections.get(&id).cloned().unwrap_or_default(),
                    connection_id: id,
                });
                guarded(move || l.on_signal_received(signal_type, data, from));
            }
            Event::ActiveSpeakerChanged { stream_id, connection_id } => {
                guarded(move || l.on_active_speaker_changed(stream_id, connection_id));
            }
            Event::Publisher { publisher, event } => {
                let core = lock(&self.shared.publishers).get(&publisher).cloned();
                if let Some(core) = core {
                    self.publisher_event(core, publisher, event);
                }
            }
            Event::Subscriber { subscriber, event } => {
                let core = lock(&self.shared.subscribers).get(&subscriber).cloned();
                if let Some(core) = core {
                    self.subscriber_event(core, subscriber, event);
                }
            }
            // Events of a later native SDK that this binding has no listener call for yet.
            _ => {}
        }
    }

    fn publisher_event(&mut self, core: Arc<PublisherCore>, id: PublisherId, event: PublisherEvent) {
        match event {
            PublisherEvent::StreamCreated { stream_id } => {
                let own = lock(&self.shared.connection_id).clone().unwrap_or_default();
                let stream = self.streams.get(&stream_id).cloned().unwrap_or_else(|| {
                    let s = &core.settings;
                    Stream {
                        stream_id,
                        connection: Connection {
                            data: self.connections.get(&own).cloned().unwrap_or_default(),
                            connection_id: own,
                        },
                        name: s.name.clone(),
                        has_audio: s.audio != AudioSourceKind::None,
                        has_video: s.video != VideoSourceKind::None,
                        video_type: "camera".into(),
                        video_width: 0,
                        video_height: 0,
                        e2ee: self.shared.e2ee.load(Ordering::Acquire),
                    }
                });
                lock(&core.state).stream = Some(stream.clone());
                guarded(move || core.listener.on_stream_created(stream));
            }
            PublisherEvent::Error(e) => {
                let info = Family::Publisher.info(&e);
                guarded(move || core.listener.on_error(info));
            }
            PublisherEvent::MuteForced { .. } => {
                lock(&core.state).publish_audio = false;
                guarded(move || core.listener.on_mute_forced());
            }
            PublisherEvent::Destroyed => {
                lock(&self.shared.publishers).remove(&id);
                if let Some(stream) = core.end() {
                    guarded(move || core.listener.on_stream_destroyed(stream));
                }
            }
            // No listener call for these (the C SDK and the vendor's have none either).
            PublisherEvent::MediaConnected => {}
            _ => {}
        }
    }

    fn subscriber_event(&mut self, core: Arc<SubscriberCore>, id: SubscriberId, event: SubscriberEvent) {
        match event {
            SubscriberEvent::Connected => {
                guarded(move || core.listener.on_connected());
            }
            SubscriberEvent::VideoFrame(frame) => {
                if let Some(r) = core.renderer.clone() {
                    let frame = VideoFrame::from_native(frame);
                    guarded(move || r.on_frame(frame));
                }
            }
            SubscriberEvent::AudioFrame(a) => {
                if let Some(r) = core.audio.clone() {
                    let pcm = pcm_bytes(&a.samples);
                    guarded(move || r.on_audio_data(pcm));
                }
            }
            SubscriberEvent::EncryptionSecretMismatch => {
                guarded(move || core.listener.on_encryption_secret_mismatch());
            }
            SubscriberEvent::EncryptionSecretMatch => {
                guarded(move || core.listener.on_encryption_secret_match());
            }
            SubscriberEvent::Error(e) => {
                let info = Family::Subscriber.info(&e);
                guarded(move || core.listener.on_error(info));
            }
            SubscriberEvent::VideoLayerChanged { rid, temporal_layer, paused } => {
                let layer = VideoLayer { rid, temporal_layer, paused };
                guarded(move || core.listener.on_video_layer_changed(layer));
            }
            // Already reported by the Error(StreamNotEncrypted) just before it, as the C SDK does.
            SubscriberEvent::StreamNotEncrypted => {}
            SubscriberEvent::Destroyed => {
                lock(&self.shared.subscribers).remove(&id);
                lock(&core.state).subscribed = None;
                guarded(move || core.listener.on_disconnected());
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl SessionListener for Quiet {
        fn on_connected(&self, _: String) {}
        fn on_disconnected(&self) {}
        fn on_error(&self, _: ErrorInfo) {}
        fn on_connection_created(&self, _: Connection) {}
        fn on_connection_dropped(&self, _: Connection) {}
        fn on_stream_received(&self, _: Stream) {}
        fn on_stream_dropped(&self, _: Stream) {}
        fn on_stream_has_audio_changed(&self, _: Stream, _: bool) {}
        fn on_stream_has_video_changed(&self, _: Stream, _: bool) {}
        fn on_stream_video_dimensions_changed(&self, _: Stream, _: u32, _: u32) {}
        fn on_signal_received(&self, _: String, _: String, _: Option<Connection>) {}
        fn on_active_speaker_changed(&self, _: Option<String>, _: Option<String>) {}
    }

    impl SubscriberListener for Quiet {
        fn on_connected(&self) {}
        fn on_disconnected(&self) {}
        fn on_error(&self, _: ErrorInfo) {}
        fn on_encryption_secret_mismatch(&self) {}
        fn on_encryption_secret_match(&self) {}
        fn on_video_layer_changed(&self, _: VideoLayer) {}
    }

    /// What an app does when a stream has already ended (its subscription cleared by the
    /// dispatch thread) and the app then unsubscribes: an error, not a hang.
    #[test]
    fn unsubscribing_a_subscriber_that_is_not_subscribed_is_an_error() {
        let options = SessionOptions {
            api_key: "key".into(),
            session_id: "session".into(),
            server_url: "http://127.0.0.1:1".into(),
            bind_ip: None,
        };
        let session = Session::new(options, Arc::new(Quiet)).expect("session");
        let stream = Stream {
            stream_id: "stream".into(),
            connection: Connection { connection_id: "c".into(), data: String::new() },
            name: String::new(),
            has_audio: false,
            has_video: true,
            video_type: "camera".into(),
            video_width: 0,
            video_height: 0,
            e2ee: true,
        };
        let subscriber = Subscriber::new(stream, Arc::new(Quiet), None, None).expect("subscriber");
        let (tx, rx) = std::sync::mpsc::channel();
        let s = session.clone();
        std::thread::spawn(move || {
            let _ = tx.send(s.unsubscribe(subscriber));
        });
        let result = rx.recv_timeout(Duration::from_secs(10)).expect("unsubscribe returned within 10 s");
        assert!(matches!(result, Err(UmbraError::IllegalState { .. })), "{result:?}");
    }
}
