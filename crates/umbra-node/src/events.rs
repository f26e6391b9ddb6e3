//! The module's one event stream (`onEvent`): what the UniFFI listeners receive on a session's
//! dispatch thread, flattened into `NativeEvent` objects and queued to the JavaScript thread.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard};

use napi::Status;
use napi::bindgen_prelude::Function;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use umbra_ffi::{
    Connection, ErrorInfo, PublisherListener, SessionListener, Stream, SubscriberListener, VideoFrame, VideoLayer,
    VideoRenderer, error_code_value, test_pattern_read_frame_number,
};

use crate::error::code_name;

/// A stream as `onEvent` and `createSubscriber` know it.
#[napi(object)]
#[derive(Clone)]
pub struct NativeStream {
    pub stream_id: String,
    pub connection_id: String,
    pub connection_data: String,
    pub name: String,
    pub has_audio: bool,
    pub has_video: bool,
    pub video_type: String,
    pub video_width: u32,
    pub video_height: u32,
    /// Named explicitly: the default camelCase would make it `e2Ee`.
    #[napi(js_name = "e2ee")]
    pub e2ee: bool,
}

impl From<&Stream> for NativeStream {
    fn from(s: &Stream) -> Self {
        NativeStream {
            stream_id: s.stream_id.clone(),
            connection_id: s.connection.connection_id.clone(),
            connection_data: s.connection.data.clone(),
            name: s.name.clone(),
            has_audio: s.has_audio,
            has_video: s.has_video,
            video_type: s.video_type.clone(),
            video_width: s.video_width,
            video_height: s.video_height,
            e2ee: s.e2ee,
        }
    }
}

/// An error reported by a listener: the code's name, its C SDK number, the core's message.
#[napi(object)]
#[derive(Clone)]
pub struct NativeError {
    pub code: String,
    pub code_value: i32,
    pub message: String,
}

impl From<ErrorInfo> for NativeError {
    fn from(e: ErrorInfo) -> Self {
        NativeError { code: code_name(e.code), code_value: error_code_value(e.code), message: e.message }
    }
}

/// What the router forwards of a subscriber's video (`videoLayerChanged`).
#[napi(object)]
#[derive(Clone)]
pub struct NativeVideoLayer {
    /// "q", "h" or "f" (smallest first); absent for a stream without simulcast.
    pub rid: Option<String>,
    /// The highest temporal layer forwarded; absent for all.
    pub temporal_layer: Option<u32>,
    pub paused: bool,
}

impl From<VideoLayer> for NativeVideoLayer {
    fn from(l: VideoLayer) -> Self {
        NativeVideoLayer { rid: l.rid, temporal_layer: l.temporal_layer.map(u32::from), paused: l.paused }
    }
}

/// One event: `target` ("session", "publisher", "subscriber") and `handle` say whose, `type`
/// says what; the optional fields that `type` uses are set.
#[napi(object)]
#[derive(Clone)]
pub struct NativeEvent {
    pub target: String,
    pub handle: String,
    #[napi(js_name = "type")]
    pub kind: String,
    pub connection_id: Option<String>,
    pub connection_data: Option<String>,
    pub stream: Option<NativeStream>,
    pub error: Option<NativeError>,
    pub signal_type: Option<String>,
    pub data: Option<String>,
    /// `activeSpeakerChanged`: the speaking stream's id (absent: nobody speaks).
    pub stream_id: Option<String>,
    pub video_layer: Option<NativeVideoLayer>,
}

impl NativeEvent {
    fn new(target: &str, handle: &str, kind: &str) -> Self {
        NativeEvent {
            target: target.into(),
            handle: handle.into(),
            kind: kind.into(),
            connection_id: None,
            connection_data: None,
            stream: None,
            error: None,
            signal_type: None,
            data: None,
            stream_id: None,
            video_layer: None,
        }
    }
}

/// Weak: a registered listener does not keep Node's event loop alive (a test process ends when
/// its work does, whatever sessions are left).
type Tsfn = ThreadsafeFunction<NativeEvent, (), NativeEvent, Status, false, true>;

static NEXT_LISTENER: AtomicU64 = AtomicU64::new(1);

fn listeners() -> MutexGuard<'static, HashMap<u64, Arc<Tsfn>>> {
    static L: LazyLock<Mutex<HashMap<u64, Arc<Tsfn>>>> = LazyLock::new(Mutex::default);
    // A panic elsewhere while holding it leaves the map intact: keep using it.
    L.lock().unwrap_or_else(|p| p.into_inner())
}

fn emit(event: NativeEvent) {
    let targets: Vec<Arc<Tsfn>> = listeners().values().cloned().collect();
    for t in targets {
        // NonBlocking: the dispatch thread never waits for JavaScript; an environment that is
        // going away refuses the call, which is fine.
        let _ = t.call(event.clone(), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// What `onEvent` returns, like React Native's `EventSubscription`.
#[napi]
pub struct EventSubscription {
    id: u64,
}

#[napi]
impl EventSubscription {
    /// Stops delivering events to this listener (idempotent).
    #[napi]
    pub fn remove(&self) {
        listeners().remove(&self.id);
    }
}

/// Registers a listener for every event of every session, publisher and subscriber.
#[napi]
pub fn on_event(listener: Function<NativeEvent, ()>) -> napi::Result<EventSubscription> {
    let tsfn = listener.build_threadsafe_function::<NativeEvent>().callee_handled::<false>().weak::<true>().build()?;
    let id = NEXT_LISTENER.fetch_add(1, Ordering::Relaxed);
    listeners().insert(id, Arc::new(tsfn));
    Ok(EventSubscription { id })
}

/// Streams a session has announced, by id: `createSubscriber` takes an id, the binding a record.
pub(crate) type StreamTable = Arc<Mutex<HashMap<String, Stream>>>;

pub(crate) struct SessionEvents {
    pub(crate) handle: String,
    pub(crate) streams: StreamTable,
}

impl SessionEvents {
    fn ev(&self, kind: &str) -> NativeEvent {
        NativeEvent::new("session", &self.handle, kind)
    }

    fn with_connection(&self, kind: &str, c: Connection) -> NativeEvent {
        NativeEvent { connection_id: Some(c.connection_id), connection_data: Some(c.data), ..self.ev(kind) }
    }

    fn with_stream(&self, kind: &str, s: &Stream) -> NativeEvent {
        NativeEvent { stream: Some(s.into()), ..self.ev(kind) }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<String, Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl SessionListener for SessionEvents {
    fn on_connected(&self, connection_id: String) {
        emit(NativeEvent { connection_id: Some(connection_id), ..self.ev("sessionConnected") });
    }
    fn on_disconnected(&self) {
        self.table().clear();
        emit(self.ev("sessionDisconnected"));
    }
    fn on_error(&self, error: ErrorInfo) {
        emit(NativeEvent { error: Some(error.into()), ..self.ev("error") });
    }
    fn on_connection_created(&self, connection: Connection) {
        emit(self.with_connection("connectionCreated", connection));
    }
    fn on_connection_dropped(&self, connection: Connection) {
        emit(self.with_connection("connectionDestroyed", connection));
    }
    fn on_stream_received(&self, stream: Stream) {
        self.table().insert(stream.stream_id.clone(), stream.clone());
        emit(self.with_stream("streamCreated", &stream));
    }
    fn on_stream_dropped(&self, stream: Stream) {
        self.table().remove(&stream.stream_id);
        emit(self.with_stream("streamDestroyed", &stream));
    }
    fn on_stream_has_audio_changed(&self, stream: Stream, _has_audio: bool) {
        self.table().insert(stream.stream_id.clone(), stream.clone());
        emit(self.with_stream("streamPropertyChanged", &stream));
    }
    fn on_stream_has_video_changed(&self, stream: Stream, _has_video: bool) {
        self.table().insert(stream.stream_id.clone(), stream.clone());
        emit(self.with_stream("streamPropertyChanged", &stream));
    }
    fn on_stream_video_dimensions_changed(&self, stream: Stream, _width: u32, _height: u32) {
        self.table().insert(stream.stream_id.clone(), stream.clone());
        emit(self.with_stream("streamPropertyChanged", &stream));
    }
    fn on_signal_received(&self, signal_type: String, data: String, from: Option<Connection>) {
        emit(NativeEvent {
            signal_type: Some(signal_type),
            data: Some(data),
            connection_id: from.as_ref().map(|c| c.connection_id.clone()),
            connection_data: from.map(|c| c.data),
            ..self.ev("signal")
        });
    }
    fn on_active_speaker_changed(&self, stream_id: Option<String>, connection_id: Option<String>) {
        emit(NativeEvent { stream_id, connection_id, ..self.ev("activeSpeakerChanged") });
    }
}

pub(crate) struct PublisherEvents {
    pub(crate) handle: String,
}

impl PublisherListener for PublisherEvents {
    fn on_stream_created(&self, stream: Stream) {
        emit(NativeEvent {
            stream: Some((&stream).into()),
            ..NativeEvent::new("publisher", &self.handle, "streamCreated")
        });
    }
    fn on_stream_destroyed(&self, stream: Stream) {
        emit(NativeEvent {
            stream: Some((&stream).into()),
            ..NativeEvent::new("publisher", &self.handle, "streamDestroyed")
        });
    }
    fn on_error(&self, error: ErrorInfo) {
        emit(NativeEvent { error: Some(error.into()), ..NativeEvent::new("publisher", &self.handle, "error") });
    }
    fn on_mute_forced(&self) {
        emit(NativeEvent::new("publisher", &self.handle, "muteForced"));
    }
}

pub(crate) struct SubscriberEvents {
    pub(crate) handle: String,
    pub(crate) stream: NativeStream,
}

impl SubscriberEvents {
    fn ev(&self, kind: &str) -> NativeEvent {
        NativeEvent { stream: Some(self.stream.clone()), ..NativeEvent::new("subscriber", &self.handle, kind) }
    }
}

impl SubscriberListener for SubscriberEvents {
    fn on_connected(&self) {
        emit(self.ev("connected"));
    }
    fn on_disconnected(&self) {
        emit(self.ev("disconnected"));
    }
    fn on_error(&self, error: ErrorInfo) {
        emit(NativeEvent { error: Some(error.into()), ..self.ev("error") });
    }
    fn on_encryption_secret_mismatch(&self) {
        emit(self.ev("encryptionSecretMismatch"));
    }
    fn on_encryption_secret_match(&self) {
        emit(self.ev("encryptionSecretMatch"));
    }
    fn on_video_layer_changed(&self, layer: VideoLayer) {
        emit(NativeEvent { video_layer: Some(layer.into()), ..self.ev("videoLayerChanged") });
    }
}

/// What the video renderer saw; on a device the pictures go to a view instead.
#[derive(Default, Clone, Copy)]
pub(crate) struct RenderedVideo {
    pub(crate) frames: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
    /// The frame number read back from the last picture when it is the core's test pattern.
    pub(crate) test_pattern_frame: Option<u32>,
}

#[derive(Default)]
pub(crate) struct FrameCounter(pub(crate) Mutex<RenderedVideo>);

impl VideoRenderer for FrameCounter {
    fn on_frame(&self, frame: VideoFrame) {
        let (width, height) = (frame.width, frame.height);
        let n = test_pattern_read_frame_number(frame);
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        r.frames += 1;
        r.width = width;
        r.height = height;
        r.test_pattern_frame = n;
    }
}
