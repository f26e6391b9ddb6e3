//! Raw media, codecs and the built-in sources.

pub mod analysis;
mod codec;
pub mod h264;
pub mod keyframe;
pub mod level;
pub mod opus;
pub mod pattern;
pub mod scale;
pub mod vpx;

pub use codec::{Codec, MediaKind, VideoCodec, VideoDecoder, VideoEncoder};

/// What a codec can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    #[error("libvpx {op} failed: error {code}")]
    Vpx { op: &'static str, code: i32 },
    #[error("OpenH264 {op} failed: {message}")]
    OpenH264 { op: &'static str, message: String },
    #[error("picture is {got_w}x{got_h}, the encoder was set up for {want_w}x{want_h}")]
    SizeMismatch { got_w: u32, got_h: u32, want_w: u32, want_h: u32 },
    #[error("bad encoder settings: {0}")]
    BadSettings(&'static str),
    #[error("opus {op} failed: {message}")]
    Opus { op: &'static str, message: String },
}

impl CodecError {
    /// An encoder takes pictures of the size it was set up for and refuses others.
    pub(crate) fn check_size(frame: &VideoFrame, width: u32, height: u32) -> Result<(), CodecError> {
        if frame.width == width && frame.height == height {
            return Ok(());
        }
        Err(CodecError::SizeMismatch { got_w: frame.width, got_h: frame.height, want_w: width, want_h: height })
    }
}

/// One encoded picture as an encoder produced it (Annex B for H.264).
#[derive(Debug, Clone)]
pub struct EncodedPicture {
    pub data: Vec<u8>,
    pub key_frame: bool,
}

/// A picture in I420 (YUV 4:2:0 planar), tightly packed: `width * height` luma bytes, then two
/// chroma planes of `ceil(width/2) * ceil(height/2)` bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub width: u32,
    pub height: u32,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for VideoFrame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VideoFrame({}x{})", self.width, self.height)
    }
}

impl VideoFrame {
    pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// Bytes an I420 picture of this size takes.
    pub fn byte_len(width: u32, height: u32) -> usize {
        let (cw, ch) = Self::chroma_size(width, height);
        (width * height + 2 * cw * ch) as usize
    }

    /// A black picture.
    pub fn black(width: u32, height: u32) -> Self {
        let mut data = vec![16u8; Self::byte_len(width, height)];
        data[(width * height) as usize..].fill(128);
        Self { width, height, data }
    }

    /// Wraps I420 bytes; `None` if the length does not match the size.
    pub fn from_i420(width: u32, height: u32, data: Vec<u8>) -> Option<Self> {
        (width > 0 && height > 0 && data.len() == Self::byte_len(width, height)).then_some(Self { width, height, data })
    }

    pub fn y(&self) -> &[u8] {
        &self.data[..(self.width * self.height) as usize]
    }

    pub fn u(&self) -> &[u8] {
        let (cw, ch) = Self::chroma_size(self.width, self.height);
        let y = (self.width * self.height) as usize;
        &self.data[y..y + (cw * ch) as usize]
    }

    pub fn v(&self) -> &[u8] {
        let (cw, ch) = Self::chroma_size(self.width, self.height);
        let y = (self.width * self.height) as usize;
        &self.data[y + (cw * ch) as usize..]
    }
}

/// 20 ms of mono 48 kHz PCM: the unit Opus encodes.
pub const AUDIO_SAMPLE_RATE: u32 = 48_000;
pub const AUDIO_FRAME_SAMPLES: usize = 960;

/// One block of signed 16-bit mono PCM at 48 kHz.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    pub samples: Vec<i16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoders_refuse_pictures_of_another_size_with_both_sizes() {
        let frame = VideoFrame::black(320, 240);
        assert_eq!(CodecError::check_size(&frame, 320, 240), Ok(()));
        let e = CodecError::check_size(&frame, 640, 480).unwrap_err();
        assert_eq!(e, CodecError::SizeMismatch { got_w: 320, got_h: 240, want_w: 640, want_h: 480 });
        assert_eq!(e.to_string(), "picture is 320x240, the encoder was set up for 640x480");
        // Through a real encoder of each kind.
        for codec in [VideoCodec::Vp8, VideoCodec::Vp9, VideoCodec::H264] {
            let mut enc = VideoEncoder::new(codec, 640, 480, 30, 500).unwrap();
            assert!(matches!(enc.encode(&frame), Err(CodecError::SizeMismatch { .. })), "{codec:?}");
        }
    }
}
