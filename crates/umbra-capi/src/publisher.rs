//! `otc_publisher`: what the application publishes (a video capturer it supplies, or the built-in
//! test pattern; audio from the audio device hooks or the built-in tone), and the capturer
//! interface through which the application hands I420 pictures to the SDK.

use std::ffi::{c_char, c_int, c_void};
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};
use std::sync::{Arc, Mutex, Weak};

use umbra_client::media::VideoFrame;
use umbra_client::media::pattern::Tone;
use umbra_client::{
    AudioCapturer, ClientError, PublishOptions, PublisherId, PublisherSettings, TestPatternCapturer, ToneCapturer,
    VideoCapturer, VideoCodec, VideoSource,
};

use crate::errors::*;
use crate::ffi::{AppPtr, Gate, guard, lock, ref_arg, str_arg};
use crate::frame::{OTC_VIDEO_FRAME_FORMAT_YUV420P, otc_video_frame};
use crate::session::{Job, SessionInner, otc_session, session_arg};
use crate::stream::{c_text, otc_connection, otc_stream};

/// Size and rate of the built-in test pattern unless `otc_publisher_settings_set_test_pattern`
/// says otherwise.
pub const OTC_TEST_PATTERN_DEFAULT_WIDTH: c_int = 320;
pub const OTC_TEST_PATTERN_DEFAULT_HEIGHT: c_int = 240;
pub const OTC_TEST_PATTERN_DEFAULT_FPS: c_int = 30;

/// Video codecs for `otc_publisher_settings_set_preferred_video_codec`, numbered as OpenTok's
/// native SDKs number them.
pub const OTC_VIDEO_CODEC_VP8: c_int = 1;
pub const OTC_VIDEO_CODEC_H264: c_int = 2;
pub const OTC_VIDEO_CODEC_VP9: c_int = 3;

/// A publisher (opaque). Made by `otc_publisher_new` / `otc_publisher_new_with_settings`, freed
/// by `otc_publisher_delete`.
pub struct otc_publisher {
    core: Arc<PubCore>,
}

/// Publisher callbacks. Every member may be NULL. They run on the dispatch thread of the
/// session the publisher is published in.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_publisher_callbacks {
    /// The server accepted the stream. `stream` is owned by the publisher and valid until the
    /// publisher is deleted or publishes again (`otc_publisher_get_stream` returns it too).
    pub on_stream_created:
        Option<unsafe extern "C" fn(publisher: *mut otc_publisher, user_data: *mut c_void, stream: *const otc_stream)>,
    /// A publisher error, e.g. `OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING` (equal to
    /// `OTC_SESSION_ENCRYPTION_SECRET_MISSING`) or `OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR`.
    /// `error_string` is valid during the call.
    pub on_error: Option<
        unsafe extern "C" fn(
            publisher: *mut otc_publisher,
            user_data: *mut c_void,
            error_string: *const c_char,
            error: otc_publisher_error_code,
        ),
    >,
    /// A moderator (or the REST API) forced this publisher to mute its audio. The SDK has
    /// already stopped sending audio and told the session (others get
    /// `on_stream_has_audio_changed`); `otc_publisher_get_publish_audio` now returns
    /// `OTC_FALSE` and `otc_publisher_set_publish_audio(publisher, OTC_TRUE)` unmutes.
    pub on_mute_forced: Option<unsafe extern "C" fn(publisher: *mut otc_publisher, user_data: *mut c_void)>,
    /// Passed back to every callback; the SDK never dereferences it.
    pub user_data: *mut c_void,
    /// Must be NULL.
    pub reserved: *mut c_void,
}

/// What a video capturer produces, filled in by its `get_capture_settings`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct otc_video_capturer_settings {
    /// Must be `OTC_VIDEO_FRAME_FORMAT_YUV420P`.
    pub format: c_int,
    /// Picture size; every frame provided must have it (64..=4096 x 16..=4096, even).
    pub width: c_int,
    pub height: c_int,
    /// Frames per second the SDK encodes (1..=120): it takes the latest provided frame at this
    /// rate.
    pub fps: c_int,
    /// Unused by Umbra (kept for the shape of the struct).
    pub expected_delay: c_int,
    /// Unused by Umbra (there is no local renderer).
    pub mirror_on_local_render: otc_bool,
}

/// A video capturer the application implements. Every member may be NULL except
/// `get_capture_settings`. `init` and `get_capture_settings` run inside `otc_publisher_new*`;
/// `start` inside `otc_session_publish`; `stop` inside `otc_session_unpublish`,
/// `otc_session_delete` or `otc_publisher_delete`; `destroy` inside `otc_publisher_delete`. All
/// on the thread that calls those functions. Between `start` and `stop` the application calls
/// `otc_video_capturer_provide_frame` from any thread.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct otc_video_capturer_callbacks {
    pub init: Option<unsafe extern "C" fn(capturer: *const otc_video_capturer, user_data: *mut c_void) -> otc_bool>,
    pub destroy: Option<unsafe extern "C" fn(capturer: *const otc_video_capturer, user_data: *mut c_void) -> otc_bool>,
    pub start: Option<unsafe extern "C" fn(capturer: *const otc_video_capturer, user_data: *mut c_void) -> otc_bool>,
    pub stop: Option<unsafe extern "C" fn(capturer: *const otc_video_capturer, user_data: *mut c_void) -> otc_bool>,
    pub get_capture_settings: Option<
        unsafe extern "C" fn(
            capturer: *const otc_video_capturer,
            user_data: *mut c_void,
            settings: *mut otc_video_capturer_settings,
        ) -> otc_bool,
    >,
    /// Passed back to every callback; the SDK never dereferences it.
    pub user_data: *mut c_void,
    /// Must be NULL.
    pub reserved: *mut c_void,
}

/// The SDK's side of an application video capturer (opaque), owned by its publisher: valid from
/// `init` until `destroy` returns.
pub struct otc_video_capturer {
    callbacks: AppPtr<otc_video_capturer_callbacks>,
    width: u32,
    height: u32,
    fps: u32,
    /// The latest provided picture, taken by the encoder at its next tick.
    latest: Mutex<Option<VideoFrame>>,
    started: AtomicBool,
}

impl otc_video_capturer {
    fn call(&self, f: Option<unsafe extern "C" fn(*const otc_video_capturer, *mut c_void) -> otc_bool>) -> bool {
        match f {
            // SAFETY: an application callback with the documented arguments.
            Some(f) => (unsafe { f(self, self.callbacks.0.user_data) }) != OTC_FALSE,
            None => true,
        }
    }

    fn start(&self) -> bool {
        if self.started.swap(true, Ordering::AcqRel) {
            return true;
        }
        self.call(self.callbacks.0.start)
    }

    fn stop(&self) {
        if self.started.swap(false, Ordering::AcqRel) {
            self.call(self.callbacks.0.stop);
        }
    }
}

/// Feeds the native encoder from an application capturer.
struct CapturerBridge(Arc<otc_video_capturer>);

impl VideoCapturer for CapturerBridge {
    fn size(&self) -> (u32, u32) {
        (self.0.width, self.0.height)
    }
    fn fps(&self) -> u32 {
        self.0.fps
    }
    fn capture(&mut self) -> Option<VideoFrame> {
        lock(&self.0.latest).take()
    }
}

/// Hands a picture to the SDK (copied; the caller keeps `frame`). Call it between the capturer's
/// `start` and `stop`, from any thread; the encoder takes the latest picture at its frame rate.
/// `rotation` must be 0. `OTC_INVALID_PARAMETER` for NULL, a rotation, or a frame whose size
/// differs from the capture settings'.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_video_capturer_provide_frame(
    capturer: *const otc_video_capturer,
    rotation: c_int,
    frame: *const otc_video_frame,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or a live capturer and frame.
        let (Some(c), Some(f)) = (unsafe { ref_arg(capturer) }, unsafe { ref_arg(frame) }) else {
            return OTC_INVALID_PARAMETER;
        };
        if rotation != 0 || f.frame.width != c.width || f.frame.height != c.height {
            return OTC_INVALID_PARAMETER;
        }
        *lock(&c.latest) = Some(f.frame.clone());
        OTC_SUCCESS
    })
}

/// Publisher settings (opaque) for `otc_publisher_new_with_settings`. Made by
/// `otc_publisher_settings_new`, freed by `otc_publisher_settings_delete`; read only during
/// `otc_publisher_new_with_settings`.
pub struct otc_publisher_settings {
    name: String,
    capturer: Option<AppPtr<otc_video_capturer_callbacks>>,
    video: bool,
    audio: bool,
    pattern: (u32, u32, u32),
    video_codec: VideoCodec,
    /// `otc_publisher_settings_set_simulcast` / `_set_audio_level` (publish_options.rs).
    pub(crate) options: PublishOptions,
}

impl Default for otc_publisher_settings {
    fn default() -> Self {
        Self {
            name: String::new(),
            capturer: None,
            video: true,
            audio: true,
            pattern: (
                OTC_TEST_PATTERN_DEFAULT_WIDTH as u32,
                OTC_TEST_PATTERN_DEFAULT_HEIGHT as u32,
                OTC_TEST_PATTERN_DEFAULT_FPS as u32,
            ),
            video_codec: VideoCodec::default(),
            options: PublishOptions::default(),
        }
    }
}

/// Default publisher settings: no name, video from the built-in test pattern (320x240, 30 fps),
/// audio from the audio device (see `otc_set_audio_device`) or else a 440 Hz tone.
#[unsafe(no_mangle)]
pub extern "C" fn otc_publisher_settings_new() -> *mut otc_publisher_settings {
    guard(std::ptr::null_mut(), || Box::into_raw(Box::default()))
}

/// Frees publisher settings. NULL gives `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_delete(settings: *mut otc_publisher_settings) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if settings.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes settings it owns, once.
        drop(unsafe { Box::from_raw(settings) });
        OTC_SUCCESS
    })
}

/// Sets the stream name others see (copied).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_name(
    settings: *mut otc_publisher_settings,
    name: *const c_char,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings, and NULL or a C string.
        let (Some(s), Some(name)) = (unsafe { settings.as_mut() }, unsafe { str_arg(name) }) else {
            return OTC_INVALID_PARAMETER;
        };
        s.name = name.to_string();
        OTC_SUCCESS
    })
}

/// Sets an application video capturer (the table is copied); NULL goes back to the test pattern.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_video_capturer(
    settings: *mut otc_publisher_settings,
    capturer: *const otc_video_capturer_callbacks,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings and NULL or a valid table.
        let Some(s) = (unsafe { settings.as_mut() }) else {
            return OTC_INVALID_PARAMETER;
        };
        // SAFETY: as above.
        s.capturer = unsafe { ref_arg(capturer) }.map(|c| AppPtr(*c));
        OTC_SUCCESS
    })
}

/// Publishes video (`OTC_TRUE`, the default) or not.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_video_track(
    settings: *mut otc_publisher_settings,
    enabled: otc_bool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(s) = (unsafe { settings.as_mut() }) else {
            return OTC_INVALID_PARAMETER;
        };
        s.video = enabled != OTC_FALSE;
        OTC_SUCCESS
    })
}

/// Publishes audio (`OTC_TRUE`, the default) or not.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_audio_track(
    settings: *mut otc_publisher_settings,
    enabled: otc_bool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(s) = (unsafe { settings.as_mut() }) else {
            return OTC_INVALID_PARAMETER;
        };
        s.audio = enabled != OTC_FALSE;
        OTC_SUCCESS
    })
}

/// The codec the publisher encodes its video with (OpenTok's preferred video codec):
/// `OTC_VIDEO_CODEC_VP8` (the default), `OTC_VIDEO_CODEC_VP9` or `OTC_VIDEO_CODEC_H264`;
/// `OTC_INVALID_PARAMETER` for anything else. The stream carries this one codec; subscribers
/// that cannot decode it (Firefox without its H.264 plugin) get no video.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_preferred_video_codec(
    settings: *mut otc_publisher_settings,
    codec: c_int,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(s) = (unsafe { settings.as_mut() }) else {
            return OTC_INVALID_PARAMETER;
        };
        s.video_codec = match codec {
            OTC_VIDEO_CODEC_VP8 => VideoCodec::Vp8,
            OTC_VIDEO_CODEC_H264 => VideoCodec::H264,
            OTC_VIDEO_CODEC_VP9 => VideoCodec::Vp9,
            _ => return OTC_INVALID_PARAMETER,
        };
        OTC_SUCCESS
    })
}

/// Size and frame rate of the built-in test pattern (Umbra-specific): even width 64..=4096, even
/// height 16..=4096, fps 1..=120. `OTC_INVALID_PARAMETER` otherwise.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_settings_set_test_pattern(
    settings: *mut otc_publisher_settings,
    width: c_int,
    height: c_int,
    fps: c_int,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(s) = (unsafe { settings.as_mut() }) else {
            return OTC_INVALID_PARAMETER;
        };
        if !valid_video(width, height, fps) {
            return OTC_INVALID_PARAMETER;
        }
        s.pattern = (width as u32, height as u32, fps as u32);
        OTC_SUCCESS
    })
}

fn valid_video(width: c_int, height: c_int, fps: c_int) -> bool {
    (64..=4096).contains(&width)
        && (16..=4096).contains(&height)
        && width % 2 == 0
        && height % 2 == 0
        && (1..=120).contains(&fps)
}

enum Video {
    None,
    Pattern(u32, u32, u32),
    Capturer(Arc<otc_video_capturer>),
}

#[derive(Default)]
struct PubState {
    /// The session (by address) and native id while published.
    published: Option<(usize, Weak<SessionInner>, PublisherId)>,
    /// The stream of the latest publish; kept until the next one or the publisher's end so the
    /// pointer given to `on_stream_created` stays valid.
    stream: Option<Box<otc_stream>>,
    /// The audio device capture queue while published with the audio device.
    audio_token: Option<u64>,
}

pub(crate) struct PubCore {
    handle: AtomicPtr<otc_publisher>,
    callbacks: AppPtr<otc_publisher_callbacks>,
    gate: Gate,
    name: String,
    video: Video,
    video_codec: VideoCodec,
    audio: bool,
    options: PublishOptions,
    /// Whether audio / video are sent (`otc_publisher_set_publish_*`, a forced mute). Kept
    /// here so they can be set before publishing and read at any time.
    publish_audio: AtomicBool,
    publish_video: AtomicBool,
    state: Mutex<PubState>,
}

impl PubCore {
    /// Runs `f` under the gate if this publisher is still published as `id` in session `key`.
    pub(crate) fn run_registered(&self, key: usize, id: PublisherId, f: impl FnOnce(&PubCore)) {
        self.gate
            .run(|| lock(&self.state).published.as_ref().is_some_and(|(k, _, i)| *k == key && *i == id), || f(self));
    }

    pub(crate) fn call_on_error(&self, e: &ClientError) {
        if let Some(f) = self.callbacks.0.on_error {
            let msg = c_text(&e.to_string());
            // SAFETY: an application callback with the documented arguments.
            unsafe {
                f(self.handle.load(Ordering::Acquire), self.callbacks.0.user_data, msg.as_ptr(), publisher_code(e))
            }
        }
    }

    /// The native SDK muted this publisher's audio on a moderator's request.
    pub(crate) fn mute_forced(&self) {
        self.publish_audio.store(false, Ordering::Release);
        if let Some(stream) = &lock(&self.state).stream {
            stream.set_has_audio(false);
        }
        if let Some(f) = self.callbacks.0.on_mute_forced {
            // SAFETY: an application callback with the documented arguments.
            unsafe { f(self.handle.load(Ordering::Acquire), self.callbacks.0.user_data) }
        }
    }

    /// Applies `otc_publisher_set_publish_audio` / `_video` to the native publisher, if
    /// published. Lock order as in `otc_session_publish`: native session, then state.
    fn apply_publish_flags(&self) {
        let published = lock(&self.state).published.clone();
        let Some((_, weak, id)) = published else {
            return;
        };
        let Some(inner) = weak.upgrade() else { return };
        let (audio, video) = (self.publish_audio.load(Ordering::Acquire), self.publish_video.load(Ordering::Acquire));
        inner.with_native(|native| {
            // Not connected any more: nothing is sent anyway.
            let _ = native.set_publish_audio(id, audio);
            let _ = native.set_publish_video(id, video);
        });
    }

    /// An error of `otc_session_publish`, reported from the dispatch thread (queued job).
    pub(crate) fn report_error(&self, e: &ClientError) {
        self.gate.run(|| true, || self.call_on_error(e));
    }

    pub(crate) fn stream_created(&self, key: usize, id: PublisherId, stream_id: &str, connection: otc_connection) {
        self.run_registered(key, id, |p| {
            let stream = Box::new(otc_stream::new(
                stream_id,
                &p.name,
                connection,
                p.audio && p.publish_audio.load(Ordering::Acquire),
                !matches!(p.video, Video::None) && p.publish_video.load(Ordering::Acquire),
            ));
            let ptr: *const otc_stream = &*stream;
            // The previous stream (if any) is only freed here, on the dispatch thread, outside
            // any callback that could still be using it.
            lock(&p.state).stream = Some(stream);
            if let Some(f) = p.callbacks.0.on_stream_created {
                // SAFETY: an application callback; the stream box lives in the state.
                unsafe { f(p.handle.load(Ordering::Acquire), p.callbacks.0.user_data, ptr) }
            }
        });
    }

    /// The session is going away (`otc_session_delete`): stop, as after an unpublish.
    pub(crate) fn forget_session(&self, inner: &Arc<SessionInner>) {
        let mut st = lock(&self.state);
        if st.published.as_ref().is_some_and(|(k, _, _)| *k == inner.key()) {
            st.published = None;
            let token = st.audio_token.take();
            drop(st);
            self.stopped(token);
        }
    }

    /// After leaving a session: no more frames wanted, audio device released.
    fn stopped(&self, audio_token: Option<u64>) {
        if let Video::Capturer(c) = &self.video {
            c.stop();
        }
        if let Some(t) = audio_token {
            crate::audio::capture_release(t);
        }
    }

    fn settings(&self) -> (PublisherSettings, Option<u64>) {
        let video = match &self.video {
            Video::None => None,
            Video::Pattern(w, h, fps) => Some(VideoSource::Raw(Box::new(TestPatternCapturer::new(*w, *h, *fps)))),
            Video::Capturer(c) => Some(VideoSource::Raw(Box::new(CapturerBridge(c.clone())))),
        };
        let (audio, token) = if self.audio {
            match crate::audio::capture_acquire() {
                Some((token, capturer)) => (Some(capturer), Some(token)),
                None => (Some(Box::new(ToneCapturer(Tone::new(440.0))) as Box<dyn AudioCapturer>), None),
            }
        } else {
            (None, None)
        };
        (
            PublisherSettings {
                name: self.name.clone(),
                video,
                audio,
                video_bitrate_kbps: 800,
                audio_bitrate_bps: 32_000,
                video_codec: self.video_codec,
            },
            token,
        )
    }
}

/// A publisher named `name` (copied; may be NULL for no name). `capturer` is an application
/// video capturer (the table is copied), or NULL for the built-in test pattern (320x240 at
/// 30 fps). Audio comes from the audio device (`otc_set_audio_device`) or else a 440 Hz tone.
/// `callbacks` (copied) may be NULL for none. The caller owns the result and frees it with
/// `otc_publisher_delete`. NULL if the capturer's `init` fails or its settings are invalid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_new(
    name: *const c_char,
    capturer: *const otc_video_capturer_callbacks,
    callbacks: *const otc_publisher_callbacks,
) -> *mut otc_publisher {
    guard(std::ptr::null_mut(), || {
        let mut s = otc_publisher_settings::default();
        if !name.is_null() {
            // SAFETY: the caller passes NULL or a C string.
            let Some(name) = (unsafe { str_arg(name) }) else {
                return std::ptr::null_mut();
            };
            s.name = name.to_string();
        }
        // SAFETY: the caller passes NULL or a valid table.
        s.capturer = unsafe { ref_arg(capturer) }.map(|c| AppPtr(*c));
        // SAFETY: as above.
        unsafe { new_publisher(callbacks, &s) }
    })
}

/// A publisher made from `settings` (read during the call only). See `otc_publisher_new`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_new_with_settings(
    callbacks: *const otc_publisher_callbacks,
    settings: *const otc_publisher_settings,
) -> *mut otc_publisher {
    guard(std::ptr::null_mut(), || {
        // SAFETY: the caller passes NULL or live settings.
        let Some(s) = (unsafe { ref_arg(settings) }) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as above.
        unsafe { new_publisher(callbacks, s) }
    })
}

/// # Safety
/// `callbacks` is NULL or a valid table.
unsafe fn new_publisher(callbacks: *const otc_publisher_callbacks, s: &otc_publisher_settings) -> *mut otc_publisher {
    let empty = otc_publisher_callbacks {
        on_stream_created: None,
        on_error: None,
        on_mute_forced: None,
        user_data: std::ptr::null_mut(),
        reserved: std::ptr::null_mut(),
    };
    // SAFETY: as the caller guarantees.
    let callbacks = unsafe { ref_arg(callbacks) }.copied().unwrap_or(empty);
    let video = match (s.video, s.capturer) {
        (false, _) => Video::None,
        (true, None) => Video::Pattern(s.pattern.0, s.pattern.1, s.pattern.2),
        (true, Some(cb)) => match init_capturer(cb) {
            Some(c) => Video::Capturer(c),
            None => return std::ptr::null_mut(),
        },
    };
    let core = Arc::new(PubCore {
        handle: AtomicPtr::new(std::ptr::null_mut()),
        callbacks: AppPtr(callbacks),
        gate: Gate::default(),
        name: s.name.clone(),
        video,
        video_codec: s.video_codec,
        audio: s.audio,
        options: s.options,
        publish_audio: AtomicBool::new(true),
        publish_video: AtomicBool::new(true),
        state: Mutex::default(),
    });
    let handle = Box::into_raw(Box::new(otc_publisher { core: core.clone() }));
    core.handle.store(handle, Ordering::Release);
    handle
}

/// Calls the capturer's `init` and `get_capture_settings`; `None` (after `destroy`) if either
/// fails or the settings cannot be encoded.
fn init_capturer(cb: AppPtr<otc_video_capturer_callbacks>) -> Option<Arc<otc_video_capturer>> {
    let get = cb.0.get_capture_settings?;
    let c = Arc::new(otc_video_capturer {
        callbacks: cb,
        width: 0,
        height: 0,
        fps: 0,
        latest: Mutex::new(None),
        started: AtomicBool::new(false),
    });
    if !c.call(cb.0.init) {
        return None;
    }
    let mut settings = otc_video_capturer_settings {
        format: OTC_VIDEO_FRAME_FORMAT_YUV420P,
        width: 0,
        height: 0,
        fps: 0,
        expected_delay: 0,
        mirror_on_local_render: OTC_FALSE,
    };
    // SAFETY: an application callback; `settings` is a live local for it to fill in.
    let ok = unsafe { get(Arc::as_ptr(&c), cb.0.user_data, &mut settings) } != OTC_FALSE;
    if !ok
        || settings.format != OTC_VIDEO_FRAME_FORMAT_YUV420P
        || !valid_video(settings.width, settings.height, settings.fps)
    {
        c.call(cb.0.destroy);
        return None;
    }
    // The handle given to `init` must stay the handle for the capturer's life, so fill in the
    // settings in place rather than building a new Arc.
    let mut c = c;
    let inner = Arc::get_mut(&mut c)?;
    inner.width = settings.width as u32;
    inner.height = settings.height as u32;
    inner.fps = settings.fps as u32;
    Some(c)
}

/// The stream of the latest publish (owned by the publisher), or NULL before `on_stream_created`
/// or if `publisher` is NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_get_stream(publisher: *const otc_publisher) -> *const otc_stream {
    guard(std::ptr::null(), || {
        // SAFETY: the caller passes NULL or a live publisher.
        let Some(p) = (unsafe { ref_arg(publisher) }) else {
            return std::ptr::null();
        };
        lock(&p.core.state).stream.as_deref().map_or(std::ptr::null(), |s| s as *const otc_stream)
    })
}

/// Publishes in a connected session. `on_stream_created` follows on the session's dispatch
/// thread. Returns `OTC_SUCCESS`, `OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING` (equal to
/// `OTC_SESSION_ENCRYPTION_SECRET_MISSING`; also reported to the publisher's `on_error`) in an
/// end-to-end encrypted session without a secret, `OTC_PUBLISHER_SESSION_DISCONNECTED` when not
/// connected, `OTC_ILLEGAL_STATE` if the publisher is already published, `OTC_INVALID_PARAMETER`
/// for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_publish(session: *mut otc_session, publisher: *mut otc_publisher) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live objects.
        let (Some(inner), Some(p)) = (unsafe { session_arg(session) }, unsafe { ref_arg(publisher) }) else {
            return OTC_INVALID_PARAMETER;
        };
        let core = &p.core;
        if lock(&core.state).published.is_some() {
            return OTC_ILLEGAL_STATE;
        }
        if let Video::Capturer(c) = &core.video
            && !c.start()
        {
            c.stop();
            return otc_publisher_error_code::OTC_PUBLISHER_INTERNAL_ERROR as otc_status;
        }
        let (settings, token) = core.settings();
        // Lock order: native session, then the publisher map, then the publisher's state. The
        // map stays locked across `publish` so the dispatch thread cannot see this publisher's
        // first event before it is registered.
        let result = inner.with_native(|native| {
            let mut map = lock(&inner.publishers);
            let mut st = lock(&core.state);
            if st.published.is_some() {
                return Err(None::<ClientError>);
            }
            let id = native.publish_with(settings, core.options).map_err(Some)?;
            // Flags set before publishing; the native SDK applies them before any media.
            let (audio, video) =
                (core.publish_audio.load(Ordering::Acquire), core.publish_video.load(Ordering::Acquire));
            if !audio {
                let _ = native.set_publish_audio(id, false);
            }
            if !video {
                let _ = native.set_publish_video(id, false);
            }
            map.insert(id, core.clone());
            st.published = Some((inner.key(), Arc::downgrade(inner), id));
            st.audio_token = token;
            Ok(())
        });
        match result {
            Some(Ok(())) => OTC_SUCCESS,
            other => {
                core.stopped(token);
                match other {
                    Some(Err(Some(e))) => {
                        // The native SDK reports this to an id the app never saw; report it
                        // to this publisher's on_error, on the dispatch thread like every
                        // callback.
                        inner.push_job(Job::PublisherError(core.clone(), e.clone()));
                        publisher_code(&e) as otc_status
                    }
                    Some(Err(None)) => OTC_ILLEGAL_STATE,
                    _ => OTC_ILLEGAL_STATE,
                }
            }
        }
    })
}

/// Stops publishing. When it returns, no callback of this publisher for this session runs any
/// more (unless called from one: that one finishes). `OTC_ILLEGAL_STATE` if the publisher is
/// not published in this session.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_session_unpublish(session: *mut otc_session, publisher: *mut otc_publisher) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: the caller passes NULL or live objects.
        let (Some(inner), Some(p)) = (unsafe { session_arg(session) }, unsafe { ref_arg(publisher) }) else {
            return OTC_INVALID_PARAMETER;
        };
        if unpublish(&p.core, Some(inner)) { OTC_SUCCESS } else { OTC_ILLEGAL_STATE }
    })
}

/// Unpublishes from `only` (or from wherever it is published when `None`); false if it was not
/// published there.
fn unpublish(core: &Arc<PubCore>, only: Option<&Arc<SessionInner>>) -> bool {
    let (key, weak, id) = {
        let st = lock(&core.state);
        match &st.published {
            Some((k, w, id)) if only.is_none_or(|s| s.key() == *k) => (*k, w.clone(), *id),
            _ => return false,
        }
    };
    let token = if let Some(inner) = weak.upgrade() {
        inner.with_native(|native| {
            lock(&inner.publishers).remove(&id);
            // Not connected any more is fine: there is nothing left to stop.
            let _ = native.unpublish(id);
        });
        let mut st = lock(&core.state);
        if st.published.as_ref().is_some_and(|(k, _, i)| *k == key && *i == id) {
            st.published = None;
        }
        st.audio_token.take()
    } else {
        let mut st = lock(&core.state);
        st.published = None;
        st.audio_token.take()
    };
    // No lock held here: a callback in flight may call into the SDK.
    core.gate.quiesce();
    core.stopped(token);
    true
}

/// Unpublishes (if published), stops and destroys the capturer, and frees the publisher. No
/// callback of it runs after this returns. NULL gives `OTC_INVALID_PARAMETER`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_delete(publisher: *mut otc_publisher) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        if publisher.is_null() {
            return OTC_INVALID_PARAMETER;
        }
        // SAFETY: the caller passes a publisher it owns, once.
        let p = unsafe { Box::from_raw(publisher) };
        unpublish(&p.core, None);
        p.core.gate.kill();
        if let Video::Capturer(c) = &p.core.video {
            c.stop();
            c.call(c.callbacks.0.destroy);
        }
        OTC_SUCCESS
    })
}

/// Starts (`OTC_TRUE`, the default) or stops sending the publisher's audio, before or while
/// publishing. While off, nothing is encoded or sent and the session sees the stream's audio as
/// off (`on_stream_has_audio_changed`). Also how an application unmutes after
/// `on_mute_forced`. A publisher made without audio stays without. `OTC_INVALID_PARAMETER` for
/// NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_set_publish_audio(
    publisher: *mut otc_publisher,
    publish_audio: otc_bool,
) -> otc_status {
    // SAFETY: the caller passes NULL or a live publisher.
    unsafe { set_flag(publisher, publish_audio, |c| &c.publish_audio) }
}

/// Starts or stops sending the publisher's video, as `otc_publisher_set_publish_audio`.
/// Turning it back on starts with a key frame.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_set_publish_video(
    publisher: *mut otc_publisher,
    publish_video: otc_bool,
) -> otc_status {
    // SAFETY: the caller passes NULL or a live publisher.
    unsafe { set_flag(publisher, publish_video, |c| &c.publish_video) }
}

/// # Safety
/// `publisher` is NULL or a live publisher.
unsafe fn set_flag(
    publisher: *mut otc_publisher,
    value: otc_bool,
    flag: impl Fn(&PubCore) -> &AtomicBool,
) -> otc_status {
    guard(OTC_INTERNAL_ERROR, || {
        // SAFETY: as the caller guarantees.
        let Some(p) = (unsafe { ref_arg(publisher) }) else {
            return OTC_INVALID_PARAMETER;
        };
        flag(&p.core).store(value != OTC_FALSE, Ordering::Release);
        p.core.apply_publish_flags();
        OTC_SUCCESS
    })
}

/// Whether the publisher sends audio: `OTC_FALSE` after `otc_publisher_set_publish_audio(..,
/// OTC_FALSE)` or a forced mute (and for NULL).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_get_publish_audio(publisher: *const otc_publisher) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live publisher.
        match unsafe { ref_arg(publisher) } {
            Some(p) if p.core.publish_audio.load(Ordering::Acquire) => OTC_TRUE,
            _ => OTC_FALSE,
        }
    })
}

/// Whether the publisher sends video, as `otc_publisher_get_publish_audio`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn otc_publisher_get_publish_video(publisher: *const otc_publisher) -> otc_bool {
    guard(OTC_FALSE, || {
        // SAFETY: the caller passes NULL or a live publisher.
        match unsafe { ref_arg(publisher) } {
            Some(p) if p.core.publish_video.load(Ordering::Acquire) => OTC_TRUE,
            _ => OTC_FALSE,
        }
    })
}
