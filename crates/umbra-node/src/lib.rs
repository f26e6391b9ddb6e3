//! The React Native SDK's native module (`sdk/react-native/src/NativeUmbra.ts`) as a Node addon,
//! backed by the real Rust core through `umbra-ffi`, the same UniFFI binding the Android and iOS
//! native modules call. It exists so that the React Native components are tested against a real
//! server with real media and real encryption under Node (jest), without a device.
//!
//! Each function here is one line of the spec's mapping table (sdk/react-native/README.md): it
//! looks up the objects behind string handles, calls the binding, and turns its errors into
//! JavaScript errors whose `code` is the binding's `ErrorCode` name. Listener calls become
//! `onEvent` events. Nothing here encrypts, signals or decodes.

mod error;
mod events;
mod registry;

use std::sync::Arc;

use napi_derive::napi;
use umbra_ffi::{
    AudioSourceKind, PublishOptions, Publisher, PublisherSettings, Session, SessionOptions, Subscriber, VideoCodec,
    VideoSize, VideoSourceKind,
};

use crate::error::{Result, from_umbra, invalid, unknown_handle};
use crate::events::{FrameCounter, PublisherEvents, SessionEvents, StreamTable, SubscriberEvents};
use crate::registry::{PublisherEntry, Registry, SessionEntry, SubscriberEntry};

pub use events::{EventSubscription, NativeError, NativeEvent, NativeStream, NativeVideoLayer, on_event};

/// The binding's version.
#[napi]
pub fn sdk_version() -> String {
    umbra_ffi::sdk_version()
}

/// A session object for `sessionId` on the server at `serverUrl`; nothing is sent until
/// `connect`. Returns its handle.
#[napi]
pub fn create_session(api_key: String, session_id: String, server_url: String) -> Result<String> {
    let streams = StreamTable::default();
    let mut reg = Registry::get();
    let handle = reg.next_handle("session");
    let listener = Arc::new(SessionEvents { handle: handle.clone(), streams: streams.clone() });
    let options = SessionOptions { api_key, session_id, server_url, bind_ip: None };
    let session = Session::new(options, listener).map_err(from_umbra)?;
    reg.sessions.insert(handle.clone(), SessionEntry { session, streams });
    Ok(handle)
}

/// Sets or changes the secret; `InvalidEncryptionSecret` (nothing changes) unless it has 8 to 256
/// characters.
#[napi]
pub fn set_encryption_secret(session: String, secret: String) -> Result<()> {
    Registry::session(&session)?.set_encryption_secret(secret).map_err(from_umbra)
}

/// Connects with a client token; `sessionConnected` or an `error` event follows.
#[napi]
pub fn connect(session: String, token: String) -> Result<()> {
    Registry::session(&session)?.connect(token).map_err(from_umbra)
}

#[napi]
pub fn disconnect(session: String) -> Result<()> {
    Registry::session(&session)?.disconnect();
    Ok(())
}

/// Disconnects and forgets the session; its publishers and subscribers stop.
#[napi]
pub fn destroy_session(session: String) -> Result<()> {
    let entry = Registry::get().sessions.remove(&session).ok_or_else(|| unknown_handle("session", &session))?;
    entry.session.disconnect();
    // The binding's drop joins the dispatch thread; off the registry lock, so listeners finish.
    drop(entry);
    Ok(())
}

/// How to publish (the spec's `PublisherSettings`).
#[napi(object)]
pub struct NativePublisherSettings {
    pub name: String,
    /// "testPattern" or "none" here; a device module adds "camera".
    pub video_source: String,
    pub video_width: u32,
    pub video_height: u32,
    pub video_fps: u32,
    /// "tone" or "none".
    pub audio_source: String,
    pub tone_hz: f64,
    pub video_bitrate_kbps: u32,
    pub publish_audio: bool,
    pub publish_video: bool,
    /// "vp8", "vp9" or "h264" (any case).
    pub video_codec: String,
    /// Simulcast layers in routed sessions (default true).
    pub simulcast: Option<bool>,
    /// Send audio levels, in clear, for active-speaker detection (default true).
    pub audio_level: Option<bool>,
}

#[napi]
pub fn create_publisher(settings: NativePublisherSettings) -> Result<String> {
    let video = match settings.video_source.as_str() {
        "testPattern" => VideoSourceKind::TestPattern {
            width: settings.video_width,
            height: settings.video_height,
            fps: settings.video_fps,
        },
        "none" => VideoSourceKind::None,
        other => return Err(invalid(format!("video source {other:?}: this module has \"testPattern\" and \"none\""))),
    };
    let audio = match settings.audio_source.as_str() {
        "tone" => AudioSourceKind::Tone { frequency_hz: settings.tone_hz },
        "none" => AudioSourceKind::None,
        other => return Err(invalid(format!("audio source {other:?}: this module has \"tone\" and \"none\""))),
    };
    let video_codec = match settings.video_codec.to_ascii_lowercase().as_str() {
        "vp8" => VideoCodec::Vp8,
        "vp9" => VideoCodec::Vp9,
        "h264" => VideoCodec::H264,
        other => return Err(invalid(format!("video codec {other:?}: this module has \"VP8\", \"VP9\" and \"H264\""))),
    };
    let mut reg = Registry::get();
    let handle = reg.next_handle("publisher");
    let listener = Arc::new(PublisherEvents { handle: handle.clone() });
    let native = PublisherSettings {
        name: settings.name,
        video,
        audio,
        video_bitrate_kbps: settings.video_bitrate_kbps,
        video_codec,
    };
    let publisher = Publisher::new(native, None, listener).map_err(from_umbra)?;
    publisher.set_publish_audio(settings.publish_audio).map_err(from_umbra)?;
    publisher.set_publish_video(settings.publish_video).map_err(from_umbra)?;
    let d = PublishOptions::default();
    let options = PublishOptions {
        simulcast: settings.simulcast.unwrap_or(d.simulcast),
        audio_level: settings.audio_level.unwrap_or(d.audio_level),
    };
    reg.publishers.insert(handle.clone(), PublisherEntry { publisher, options });
    Ok(handle)
}

/// Publishes. A failure is thrown and also reported as the publisher's `error` event.
#[napi]
pub fn publish(session: String, publisher: String) -> Result<()> {
    let (s, (p, options)) = (Registry::session(&session)?, Registry::publisher_with_options(&publisher)?);
    s.publish_with(p, options).map_err(from_umbra)
}

#[napi]
pub fn unpublish(session: String, publisher: String) -> Result<()> {
    let (s, p) = (Registry::session(&session)?, Registry::publisher(&publisher)?);
    s.unpublish(p).map_err(from_umbra)
}

#[napi]
pub fn set_publish_audio(publisher: String, enabled: bool) -> Result<()> {
    Registry::publisher(&publisher)?.set_publish_audio(enabled).map_err(from_umbra)
}

#[napi]
pub fn set_publish_video(publisher: String, enabled: bool) -> Result<()> {
    Registry::publisher(&publisher)?.set_publish_video(enabled).map_err(from_umbra)
}

/// Forgets a publisher (unpublish it first).
#[napi]
pub fn destroy_publisher(publisher: String) -> Result<()> {
    Registry::get().publishers.remove(&publisher).map(drop).ok_or_else(|| unknown_handle("publisher", &publisher))
}

/// A subscriber for a stream the session announced (`streamCreated`), with a video renderer.
#[napi]
pub fn create_subscriber(session: String, stream_id: String) -> Result<String> {
    let mut reg = Registry::get();
    let entry = reg.sessions.get(&session).ok_or_else(|| unknown_handle("session", &session))?;
    let stream = entry
        .streams
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&stream_id)
        .cloned()
        .ok_or_else(|| from_umbra(umbra_ffi::UmbraError::StreamNotFound { message: stream_id.clone() }))?;
    let handle = reg.next_handle("subscriber");
    let listener = Arc::new(SubscriberEvents { handle: handle.clone(), stream: (&stream).into() });
    let renderer = Arc::new(FrameCounter::default());
    let subscriber = Subscriber::new(stream, listener, Some(renderer.clone()), None).map_err(from_umbra)?;
    reg.subscribers.insert(handle.clone(), SubscriberEntry { subscriber, renderer });
    Ok(handle)
}

/// Subscribes. A failure is thrown and also reported as the subscriber's `error` event.
#[napi]
pub fn subscribe(session: String, subscriber: String) -> Result<()> {
    let (s, sub) = (Registry::session(&session)?, Registry::subscriber(&subscriber)?.0);
    s.subscribe(sub).map_err(from_umbra)
}

#[napi]
pub fn unsubscribe(session: String, subscriber: String) -> Result<()> {
    let (s, sub) = (Registry::session(&session)?, Registry::subscriber(&subscriber)?.0);
    s.unsubscribe(sub).map_err(from_umbra)
}

/// A picture size (`setPreferredResolution`).
#[napi(object)]
pub struct NativeVideoSize {
    pub width: u32,
    pub height: u32,
}

/// The largest picture wanted of the subscriber's video; null for no limit.
#[napi]
pub fn set_preferred_resolution(subscriber: String, size: Option<NativeVideoSize>) -> Result<()> {
    let size = size.map(|s| VideoSize { width: s.width, height: s.height });
    Registry::subscriber(&subscriber)?.0.set_preferred_resolution(size).map_err(from_umbra)
}

/// The most frames per second wanted; null for all. Fractions round up (7.5 asks for 8), as in
/// the C SDK; the binding refuses 0, negative and above 240.
#[napi]
pub fn set_preferred_frame_rate(subscriber: String, fps: Option<f64>) -> Result<()> {
    let fps = match fps {
        None => None,
        Some(f) if f.is_finite() && f > 0.0 && f <= f64::from(umbra_ffi::MAX_PREFERRED_FRAME_RATE) => {
            Some(f.ceil() as u32)
        }
        Some(f) => {
            return Err(invalid(format!(
                "preferred frame rate {f}: it must be above 0 and at most {} (no preference is null)",
                umbra_ffi::MAX_PREFERRED_FRAME_RATE
            )));
        }
    };
    Registry::subscriber(&subscriber)?.0.set_preferred_frame_rate(fps).map_err(from_umbra)
}

#[napi]
pub fn set_subscribe_to_video(subscriber: String, enabled: bool) -> Result<()> {
    Registry::subscriber(&subscriber)?.0.set_subscribe_to_video(enabled).map_err(from_umbra)
}

#[napi]
pub fn destroy_subscriber(subscriber: String) -> Result<()> {
    Registry::get().subscribers.remove(&subscriber).map(drop).ok_or_else(|| unknown_handle("subscriber", &subscriber))
}

/// The spec's `SubscriberStats`: the core's delivery counters and what the renderer received.
#[napi(object)]
pub struct NativeSubscriberStats {
    pub video_frames_received: f64,
    pub video_frames_decoded: f64,
    pub audio_frames_decoded: f64,
    pub bytes_received: f64,
    pub decrypt_failures: f64,
    pub frames_rendered: f64,
    pub last_frame_width: u32,
    pub last_frame_height: u32,
    /// The frame number read back from the last rendered picture; -1 when it carries none.
    pub last_test_pattern_frame: f64,
}

#[napi]
pub fn get_subscriber_stats(subscriber: String) -> Result<NativeSubscriberStats> {
    let (sub, renderer) = Registry::subscriber(&subscriber)?;
    let s = sub.stats();
    let r = *renderer.0.lock().unwrap_or_else(|p| p.into_inner());
    // Counters as JavaScript numbers: exact up to 2^53, far beyond any session's frame count.
    Ok(NativeSubscriberStats {
        video_frames_received: s.video_frames_received as f64,
        video_frames_decoded: s.video_frames_decoded as f64,
        audio_frames_decoded: s.audio_frames_decoded as f64,
        bytes_received: s.bytes_received as f64,
        decrypt_failures: s.decrypt_failures as f64,
        frames_rendered: r.frames as f64,
        last_frame_width: r.width,
        last_frame_height: r.height,
        last_test_pattern_frame: r.test_pattern_frame.map_or(-1.0, f64::from),
    })
}

/// Sends a signal to everyone, or to one connection.
#[napi]
pub fn send_signal(session: String, signal_type: String, data: String, to_connection_id: Option<String>) -> Result<()> {
    Registry::session(&session)?.send_signal(signal_type, data, to_connection_id).map_err(from_umbra)
}
