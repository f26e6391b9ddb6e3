//! The values messages are made of: roles, modes, connections, streams, candidates.

use serde::{Deserialize, Serialize};

/// Derives the TypeScript declaration when the `typescript` feature is on; nothing otherwise.
macro_rules! wire {
    ($item:item) => {
        #[cfg_attr(feature = "typescript", derive(ts_rs::TS))]
        $item
    };
}
pub(crate) use wire;

wire! {
/// What a connection may do, from its token (signaling.md § Roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Publisher,
    Subscriber,
    Moderator,
    #[serde(rename = "publisheronly")]
    PublisherOnly,
}
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "publisher" => Some(Role::Publisher),
            "subscriber" => Some(Role::Subscriber),
            "moderator" => Some(Role::Moderator),
            "publisheronly" => Some(Role::PublisherOnly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Subscriber => "subscriber",
            Role::Moderator => "moderator",
            Role::PublisherOnly => "publisheronly",
        }
    }

    pub fn can_publish(self) -> bool {
        !matches!(self, Role::Subscriber)
    }

    pub fn can_subscribe(self) -> bool {
        !matches!(self, Role::PublisherOnly)
    }

    /// OpenTok documents `publisheronly` as unable to send signals.
    pub fn can_signal(self) -> bool {
        !matches!(self, Role::PublisherOnly)
    }

    pub fn can_moderate(self) -> bool {
        matches!(self, Role::Moderator)
    }
}

wire! {
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaMode {
    /// Clients send media to each other (`p2p.preference=enabled`).
    Relayed,
    /// Media goes through the media router (`p2p.preference=disabled`).
    Routed,
}
}

impl MediaMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaMode::Relayed => "relayed",
            MediaMode::Routed => "routed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "relayed" => Some(MediaMode::Relayed),
            "routed" => Some(MediaMode::Routed),
            _ => None,
        }
    }
}

wire! {
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveMode {
    Manual,
    Always,
}
}

impl ArchiveMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ArchiveMode::Manual => "manual",
            ArchiveMode::Always => "always",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "manual" => Some(ArchiveMode::Manual),
            "always" => Some(ArchiveMode::Always),
            _ => None,
        }
    }
}

wire! {
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VideoType {
    #[default]
    Camera,
    Screen,
    Custom,
}
}

wire! {
/// The size of a stream's video, as its publisher reports it: exactly `{"width", "height"}`,
/// each an integer from 1 to [`limits::MAX_VIDEO_DIMENSION`](crate::limits::MAX_VIDEO_DIMENSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct VideoDimensions {
    pub width: u32,
    pub height: u32,
}
}

// By hand, because derived struct deserialization also takes `[w, h]` and ignores no range: the
// schema is an object with exactly these two fields, each in range, and nothing else parses.
impl<'de> Deserialize<'de> for VideoDimensions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = VideoDimensions;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object {\"width\", \"height\"}")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use serde::de::Error;
                let (mut width, mut height) = (None, None);
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    let slot = match key.as_ref() {
                        "width" => &mut width,
                        "height" => &mut height,
                        other => return Err(A::Error::unknown_field(other, &["width", "height"])),
                    };
                    if slot.replace(map.next_value::<u32>()?).is_some() {
                        return Err(A::Error::custom(format!("duplicate field `{key}`")));
                    }
                }
                let dims = VideoDimensions {
                    width: width.ok_or_else(|| A::Error::missing_field("width"))?,
                    height: height.ok_or_else(|| A::Error::missing_field("height"))?,
                };
                crate::validate_video_dimensions(&dims).map_err(A::Error::custom)?;
                Ok(dims)
            }
        }
        d.deserialize_map(Visit)
    }
}

wire! {
/// Another participant, as `welcome`, `snapshot` and the connection events describe it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionInfo {
    pub connection_id: String,
    /// The token's `connection_data`.
    pub data: Option<String>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub created_at: i64,
}
}

wire! {
/// A published stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub stream_id: String,
    /// The connection that publishes it.
    pub connection_id: String,
    pub name: String,
    pub has_audio: bool,
    pub has_video: bool,
    pub video_type: VideoType,
    pub video_dimensions: Option<VideoDimensions>,
    /// Whether the publisher encrypts its frames end to end.
    pub e2ee: bool,
    /// The SFrame cipher suite of an encrypted stream.
    pub cipher_suite: Option<u16>,
    /// Milliseconds since the Unix epoch.
    #[cfg_attr(feature = "typescript", ts(type = "number"))]
    pub created_at: i64,
    pub layout_class_list: Vec<String>,
}
}

wire! {
/// Why a connection or stream went away, as OpenTok names the reasons.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    ClientDisconnected,
    NetworkDisconnected,
    ForceDisconnected,
    Unpublished,
    /// The media router lost the stream's upstream peer connection (ICE, consent or DTLS).
    MediaFailed,
}
}

wire! {
/// A trickled ICE candidate, as `RTCIceCandidateInit` carries it. An empty `candidate` means the
/// end of candidates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IceCandidate {
    pub candidate: String,
    #[serde(default, rename = "sdpMid")]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub sdp_mid: Option<String>,
    #[serde(default, rename = "sdpMLineIndex")]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub sdp_m_line_index: Option<u16>,
}
}

wire! {
/// Which peer connection of a client a media event or a routed candidate is about: its upstream
/// (a stream it publishes) or a downstream (a subscription).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MediaTarget {
    Stream { stream_id: String },
    Subscription { subscription_id: String },
}
}

wire! {
/// Which end of a relayed subscription sent an ICE candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IcePeer {
    Subscriber,
    Publisher,
}
}

wire! {
/// A subscriber's wishes for the video of one routed subscription (OpenTok.js
/// `subscribeToVideo`, `setPreferredResolution`, `setPreferredFrameRate`). The router forwards
/// the simulcast layer (and temporal layer) that fits them and the subscriber's bandwidth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VideoPreference {
    /// False: no video at all (audio continues). Absent means true.
    #[serde(default = "yes")]
    pub video: bool,
    /// The largest picture wanted; absent or null: the largest the publisher sends. The layer
    /// forwarded is the smallest one at least this large in both directions, or the largest.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub max_dimensions: Option<VideoDimensions>,
    /// Frames per second wanted at most, 1 to 240; absent or null: every frame.
    #[serde(default)]
    #[cfg_attr(feature = "typescript", ts(optional = nullable))]
    pub max_frame_rate: Option<u32>,
}
}

fn yes() -> bool {
    true
}

impl Default for VideoPreference {
    fn default() -> Self {
        VideoPreference { video: true, max_dimensions: None, max_frame_rate: None }
    }
}
