//! How to subscribe, and what a subscriber hands out besides decoded pictures: the decrypted
//! encoded frames (what a recorder writes to a file without re-encoding).

use std::time::Instant;

use crate::media::{Codec, MediaKind};

/// What a subscriber delivers. The default (`SubscribeOptions::default()`) is what
/// [`crate::Session::subscribe`] does: decoded pictures and audio, no encoded frames.
///
/// Non-exhaustive: later versions add options; build it with the methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubscribeOptions {
    /// Decode: [`crate::SubscriberEvent::VideoFrame`] and [`crate::SubscriberEvent::AudioFrame`].
    pub decode: bool,
    /// Hand out every frame after decryption, before decoding:
    /// [`crate::SubscriberEvent::EncodedFrame`].
    pub encoded_frames: bool,
}

impl Default for SubscribeOptions {
    fn default() -> Self {
        Self { decode: true, encoded_frames: false }
    }
}

impl SubscribeOptions {
    /// Encoded frames only, nothing decoded: a recorder's subscription, which costs no decoder.
    pub fn encoded_only() -> Self {
        Self { decode: false, encoded_frames: true }
    }

    pub fn with_decode(mut self, decode: bool) -> Self {
        self.decode = decode;
        self
    }

    pub fn with_encoded_frames(mut self, encoded_frames: bool) -> Self {
        self.encoded_frames = encoded_frames;
        self
    }
}

/// One frame as the publisher's encoder produced it, after decryption (in an end-to-end
/// encrypted session only frames that authenticated are handed out): a VP8 or VP9 frame, an
/// H.264 access unit in Annex B form (start codes, SPS/PPS in front of IDR pictures), or an
/// Opus packet.
///
/// Non-exhaustive: later versions may carry more about a frame.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodedFrame {
    pub kind: MediaKind,
    pub codec: Codec,
    /// RTP timestamp of the frame in `clock_rate` units, extended to 64 bits (it does not wrap).
    /// Audio and video each have their own origin: align them with `received`.
    pub rtp_timestamp: u64,
    /// 90 000 for video, 48 000 for Opus.
    pub clock_rate: u32,
    /// A frame that decodes without earlier ones (VP8/VP9 key frame, H.264 IDR), read from the
    /// bitstream; always true for audio. A recording starts at one.
    pub keyframe: bool,
    /// The frame's packets all arrived and none was missing before it: false after loss that
    /// repair did not fill, when the next frames may not decode until a key frame.
    pub contiguous: bool,
    /// When its first packet arrived at this client.
    pub received: Instant,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for EncodedFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncodedFrame")
            .field("codec", &self.codec)
            .field("rtp_timestamp", &self.rtp_timestamp)
            .field("clock_rate", &self.clock_rate)
            .field("keyframe", &self.keyframe)
            .field("contiguous", &self.contiguous)
            .field("len", &self.data.len())
            .finish()
    }
}
