//! Which codec a track carries, and one encoder / decoder type over all video codecs.

use super::h264::{H264Decoder, H264Encoder};
use super::vpx::{Vpx, VpxDecoder, VpxEncoder};
use super::{CodecError, EncodedPicture, VideoFrame};

/// A video codec the SDK encodes and decodes.
///
/// Non-exhaustive: later versions may add codecs (AV1), so a `match` needs a catch-all arm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VideoCodec {
    /// libvpx; what every WebRTC endpoint decodes, and the default.
    #[default]
    Vp8,
    /// libvpx, profile 0.
    Vp9,
    /// OpenH264, constrained baseline, packetization mode 1.
    H264,
}

impl VideoCodec {
    pub const ALL: [VideoCodec; 3] = [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264];

    /// The name used on the command line, in the C API and in SDP (`vp8`, `vp9`, `h264`).
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::Vp8 => "vp8",
            VideoCodec::Vp9 => "vp9",
            VideoCodec::H264 => "h264",
        }
    }

    pub(crate) fn rtp(self) -> str0m::format::Codec {
        match self {
            VideoCodec::Vp8 => str0m::format::Codec::Vp8,
            VideoCodec::Vp9 => str0m::format::Codec::Vp9,
            VideoCodec::H264 => str0m::format::Codec::H264,
        }
    }

    pub(crate) fn from_rtp(codec: str0m::format::Codec) -> Option<Self> {
        match codec {
            str0m::format::Codec::Vp8 => Some(VideoCodec::Vp8),
            str0m::format::Codec::Vp9 => Some(VideoCodec::Vp9),
            str0m::format::Codec::H264 => Some(VideoCodec::H264),
            _ => None,
        }
    }

    /// The framing umbra-e2ee applies to this codec's frames.
    pub(crate) fn framing(self) -> umbra_e2ee::Codec {
        match self {
            VideoCodec::Vp8 => umbra_e2ee::Codec::Vp8,
            VideoCodec::Vp9 => umbra_e2ee::Codec::Vp9,
            VideoCodec::H264 => umbra_e2ee::Codec::H264,
        }
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VideoCodec {
    type Err = String;

    /// `vp8`, `vp9`, `h264` (also `h.264`), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "vp8" => Ok(VideoCodec::Vp8),
            "vp9" => Ok(VideoCodec::Vp9),
            "h264" | "h.264" => Ok(VideoCodec::H264),
            _ => Err(format!("unknown video codec {s:?} (expected vp8, vp9 or h264)")),
        }
    }
}

/// Audio or video.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

/// The codec of an encoded frame.
///
/// Non-exhaustive: later versions may add codecs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Codec {
    Opus,
    Video(VideoCodec),
}

impl Codec {
    pub fn kind(self) -> MediaKind {
        match self {
            Codec::Opus => MediaKind::Audio,
            Codec::Video(_) => MediaKind::Video,
        }
    }
}

/// A real-time encoder of one of the [`VideoCodec`]s.
pub enum VideoEncoder {
    Vpx(VpxEncoder),
    H264(H264Encoder),
}

impl VideoEncoder {
    pub fn new(codec: VideoCodec, width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, CodecError> {
        Ok(match codec {
            VideoCodec::Vp8 => Self::Vpx(VpxEncoder::new(Vpx::Vp8, width, height, fps, bitrate_kbps)?),
            VideoCodec::Vp9 => Self::Vpx(VpxEncoder::new(Vpx::Vp9, width, height, fps, bitrate_kbps)?),
            VideoCodec::H264 => Self::H264(H264Encoder::new(width, height, fps, bitrate_kbps)?),
        })
    }

    pub fn request_key_frame(&mut self) {
        match self {
            Self::Vpx(e) => e.request_key_frame(),
            Self::H264(e) => e.request_key_frame(),
        }
    }

    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Vec<EncodedPicture>, CodecError> {
        match self {
            Self::Vpx(e) => e.encode(frame),
            Self::H264(e) => e.encode(frame),
        }
    }
}

/// A decoder of one of the [`VideoCodec`]s.
pub enum VideoDecoder {
    Vpx(VpxDecoder),
    H264(H264Decoder),
}

impl VideoDecoder {
    pub fn new(codec: VideoCodec) -> Result<Self, CodecError> {
        Ok(match codec {
            VideoCodec::Vp8 => Self::Vpx(VpxDecoder::new(Vpx::Vp8)?),
            VideoCodec::Vp9 => Self::Vpx(VpxDecoder::new(Vpx::Vp9)?),
            VideoCodec::H264 => Self::H264(H264Decoder::new()?),
        })
    }

    /// Decodes one frame; returns the pictures it produced (usually one).
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<VideoFrame>, CodecError> {
        match self {
            Self::Vpx(d) => d.decode(data),
            Self::H264(d) => d.decode(data),
        }
    }
}
