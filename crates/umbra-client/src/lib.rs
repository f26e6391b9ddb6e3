//! Umbra's native SDK: connect to a session, publish real audio and video, subscribe to
//! others', with every frame end-to-end encrypted in E2EE sessions.
//!
//! ```no_run
//! use umbra_client::{Event, PublisherSettings, Session, SessionConfig};
//! let mut session = Session::new("API_KEY", "SESSION_ID", SessionConfig::default());
//! let events = session.events().unwrap();
//! session.set_encryption_secret("correct horse battery staple").unwrap();
//! session.connect("TOKEN").unwrap();
//! while let Ok(event) = events.recv() {
//!     match event {
//!         Event::Connected { .. } => { session.publish(PublisherSettings::test_pattern("camera")).unwrap(); }
//!         Event::StreamCreated(s) => { let _ = session.subscribe(&s.stream_id); }
//!         _ => {}
//!     }
//! }
//! ```
//!
//! Threading: each connected `Session` runs one thread that does all networking, encoding,
//! decoding and encryption; events are delivered over the channel `Session::events` returns.

mod error;
pub mod media;
mod peer;
mod publisher;
mod session;
mod signaling;
mod subscriber;
mod video_preference;
mod worker;

pub use error::ClientError;
pub use media::{Codec, MediaKind, VideoCodec};
pub use publisher::{
    AudioCapturer, EncodedVideoSource, LayerStats, MIN_LAYER_HEIGHT, MIN_SIMULCAST_HEIGHT, PublishOptions, PublisherId,
    PublisherSettings, PublisherStats, TestPatternCapturer, ToneCapturer, VideoCapturer, VideoSource,
};
pub use session::{
    Connection, Event, PublisherEvent, Session, SessionConfig, Stream, SubscriberEvent, SubscriberId, SubscriberStats,
};
pub use subscriber::{EncodedFrame, SubscribeOptions};
/// The protocol's own types that appear in this SDK's events and errors (one definition:
/// `umbra-protocol`).
pub use umbra_protocol::{ErrorCode, PropertyChanged, Reason, VideoDimensions, VideoType};
pub use video_preference::{MAX_PREFERRED_FRAME_RATE, MAX_PREFERRED_SIDE, VideoPreference};
