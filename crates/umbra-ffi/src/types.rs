//! Values that cross the boundary by copy: connections, streams, pictures, settings.

use umbra_client::VideoType;
use umbra_client::media::VideoFrame as NativeFrame;

use crate::error::UmbraError;

/// A participant's connection.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Connection {
    pub connection_id: String,
    /// The token's connection data (empty when it has none).
    pub data: String,
}

/// A stream in the session as it is now (changes its publisher announced included).
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct Stream {
    pub stream_id: String,
    pub connection: Connection,
    pub name: String,
    pub has_audio: bool,
    pub has_video: bool,
    /// "camera", "screen" or "custom".
    pub video_type: String,
    /// The size its publisher reports; 0 when it has not reported one.
    pub video_width: u32,
    pub video_height: u32,
    /// Its publisher declares end-to-end encryption.
    pub e2ee: bool,
}

impl Stream {
    pub(crate) fn from_native(s: &umbra_client::Stream, connection_data: &str) -> Self {
        let (w, h) = s.video_dimensions.map(|d| (d.width, d.height)).unwrap_or((0, 0));
        Stream {
            stream_id: s.stream_id.clone(),
            connection: Connection { connection_id: s.connection_id.clone(), data: connection_data.to_string() },
            name: s.name.clone(),
            has_audio: s.has_audio,
            has_video: s.has_video,
            video_type: match s.video_type {
                VideoType::Camera => "camera",
                VideoType::Screen => "screen",
                VideoType::Custom => "custom",
            }
            .to_string(),
            video_width: w,
            video_height: h,
            e2ee: s.e2ee,
        }
    }
}

/// A picture in I420, tightly packed: `width * height` luma bytes, then the U and V planes of
/// `ceil(width/2) * ceil(height/2)` bytes each.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoFrame({}x{}, {} bytes)", self.width, self.height, self.data.len())
    }
}

impl VideoFrame {
    pub(crate) fn from_native(f: NativeFrame) -> Self {
        VideoFrame { width: f.width, height: f.height, data: f.data }
    }

    pub(crate) fn into_native(self) -> Result<NativeFrame, UmbraError> {
        let (w, h, len) = (self.width, self.height, self.data.len());
        if w == 0 || h == 0 || w > 16384 || h > 16384 {
            return Err(UmbraError::invalid(format!("a picture of {w}x{h} pixels")));
        }
        NativeFrame::from_i420(w, h, self.data).ok_or_else(|| {
            UmbraError::invalid(format!(
                "an I420 picture of {w}x{h} takes {} bytes, not {len}",
                NativeFrame::byte_len(w, h)
            ))
        })
    }
}

/// What a video capturer produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct CaptureSettings {
    /// 64..=4096, even.
    pub width: u32,
    /// 16..=4096, even.
    pub height: u32,
    /// Frames per second the SDK encodes (1..=120); it takes the latest provided picture at
    /// this rate.
    pub fps: u32,
}

impl CaptureSettings {
    /// The C SDK's limits: what the VP8 encoder and the frame-number strip are known to handle.
    pub(crate) fn check(self) -> Result<Self, UmbraError> {
        let CaptureSettings { width, height, fps } = self;
        if !(64..=4096).contains(&width)
            || !(16..=4096).contains(&height)
            || !width.is_multiple_of(2)
            || !height.is_multiple_of(2)
        {
            return Err(UmbraError::invalid(format!(
                "capture size {width}x{height}: width must be 64 to 4096, height 16 to 4096, both even"
            )));
        }
        if !(1..=120).contains(&fps) {
            return Err(UmbraError::invalid(format!("capture rate {fps} fps: it must be 1 to 120")));
        }
        Ok(self)
    }
}

/// Where a publisher's video comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum VideoSourceKind {
    /// No video.
    None,
    /// The built-in moving test pattern (each picture carries its frame number).
    TestPattern { width: u32, height: u32, fps: u32 },
    /// The application's capturer, given to `Publisher::new`.
    Capturer,
}

/// Where a publisher's audio comes from.
#[derive(Debug, Clone, Copy, PartialEq, uniffi::Enum)]
pub enum AudioSourceKind {
    None,
    /// A sine tone.
    Tone {
        frequency_hz: f64,
    },
    /// 48 kHz mono 16-bit PCM the application writes with `Publisher::write_audio`.
    External,
}

/// The codec a publisher encodes its video with. Subscribers decode whichever a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Enum)]
pub enum VideoCodec {
    /// libvpx; every WebRTC endpoint decodes it.
    #[default]
    Vp8,
    /// libvpx, profile 0; Firefox and Chromium decode it.
    Vp9,
    /// OpenH264, constrained baseline; Chromium decodes it (Firefox only with its download).
    H264,
}

impl From<VideoCodec> for umbra_client::VideoCodec {
    fn from(c: VideoCodec) -> Self {
        match c {
            VideoCodec::Vp8 => umbra_client::VideoCodec::Vp8,
            VideoCodec::Vp9 => umbra_client::VideoCodec::Vp9,
            VideoCodec::H264 => umbra_client::VideoCodec::H264,
        }
    }
}

/// How to publish.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct PublisherSettings {
    pub name: String,
    pub video: VideoSourceKind,
    pub audio: AudioSourceKind,
    /// Video target bitrate.
    pub video_bitrate_kbps: u32,
    /// OpenTok's preferred video codec (the platform SDKs default to VP8).
    pub video_codec: VideoCodec,
}

/// Delivery statistics of a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, uniffi::Record)]
pub struct SubscriberStats {
    pub video_frames_received: u64,
    pub video_frames_decoded: u64,
    pub audio_frames_decoded: u64,
    pub bytes_received: u64,
    pub decrypt_failures: u64,
}

impl From<umbra_client::SubscriberStats> for SubscriberStats {
    fn from(s: umbra_client::SubscriberStats) -> Self {
        SubscriberStats {
            video_frames_received: s.video_frames_received,
            video_frames_decoded: s.video_frames_decoded,
            audio_frames_decoded: s.audio_frames_decoded,
            bytes_received: s.bytes_received,
            decrypt_failures: s.decrypt_failures,
        }
    }
}

/// How to publish, beyond [`PublisherSettings`] (`Session::publish_with`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct PublishOptions {
    /// In routed sessions, camera video in VP8 of at least 270 lines goes out as up to three
    /// simulcast layers (full, half, quarter size) so the router can forward each subscriber the
    /// size it asks for; each layer costs an encoder.
    pub simulcast: bool,
    /// Send the RFC 6464 level of each audio frame, from which the router finds the active
    /// speaker. Levels travel in clear, outside end-to-end encryption: the router sees how
    /// loudly each participant speaks. False keeps that private (no active-speaker events then).
    pub audio_level: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        let d = umbra_client::PublishOptions::default();
        PublishOptions { simulcast: d.simulcast, audio_level: d.audio_level }
    }
}

impl From<PublishOptions> for umbra_client::PublishOptions {
    fn from(o: PublishOptions) -> Self {
        umbra_client::PublishOptions::default().with_simulcast(o.simulcast).with_audio_level(o.audio_level)
    }
}

/// What the router forwards of a subscriber's video (`SubscriberListener::on_video_layer_changed`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct VideoLayer {
    /// The simulcast layer ("q", "h", "f" from the smallest); `None` for a stream without
    /// simulcast.
    pub rid: Option<String>,
    /// The highest temporal layer forwarded; `None` for all of them.
    pub temporal_layer: Option<u8>,
    /// No video comes at all (not wanted, or no bandwidth for the smallest layer).
    pub paused: bool,
}

/// A picture size a subscriber asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Record)]
pub struct VideoSize {
    pub width: u32,
    pub height: u32,
}
