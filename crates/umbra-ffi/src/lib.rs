//! UniFFI bindings over Umbra's native SDK (`umbra-client`) for Kotlin (Android and the JVM) and
//! Swift (iOS): sessions, publishers and subscribers with end-to-end encryption, listener
//! interfaces for their events, and the media hooks platform code implements (a video capturer
//! that hands over I420 pictures, video and audio renderers that receive decoded media).
//!
//! The secret rule, the error codes and the events are the C SDK's (`crates/umbra-capi`), mapped
//! from the same native errors. Nothing here encrypts: frames are protected by umbra-client.
//!
//! Every exported function either succeeds or returns an [`UmbraError`]; a panic inside one is
//! caught by UniFFI's scaffolding, and listener calls made from the dispatch thread are guarded
//! so that a throwing listener cannot take the thread down.

mod error;
mod media;
mod session;
mod types;
mod video_preference;

pub use error::{ErrorCode, ErrorInfo, UmbraError, error_code_value};
pub use media::{
    AudioRenderer, FrameSink, VideoCapturer, VideoRenderer, test_pattern_frame, test_pattern_read_frame_number,
    video_frame_psnr,
};
pub use session::{
    Publisher, PublisherListener, Session, SessionListener, SessionOptions, Subscriber, SubscriberListener,
};
pub use types::{
    AudioSourceKind, CaptureSettings, Connection, PublishOptions, PublisherSettings, Stream, SubscriberStats,
    VideoCodec, VideoFrame, VideoLayer, VideoSize, VideoSourceKind,
};
pub use umbra_client::{MAX_PREFERRED_FRAME_RATE, MAX_PREFERRED_SIDE};

uniffi::setup_scaffolding!();

/// This binding's version (the workspace's).
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// A lock whose holder panicked is still usable: a listener that threw must not break the SDK.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs application code (a foreign listener or capturer). UniFFI turns an exception thrown in
/// a foreign method without an error type into a panic; it stops here.
pub(crate) fn guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).ok()
}
