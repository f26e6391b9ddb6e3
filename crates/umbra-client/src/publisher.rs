//! What a publisher sends: settings, media sources, and its per-track encryption.

use std::time::{Duration, Instant};

use crate::error::ClientError;
use crate::media::opus::OpusEncoder;
use crate::media::pattern::{TestPattern, Tone};
use crate::media::{AudioFrame, VideoCodec, VideoEncoder, VideoFrame};

/// Identifies a publisher within its session.
pub type PublisherId = u64;

/// Supplies raw pictures (I420) at the publisher's frame rate.
pub trait VideoCapturer: Send {
    /// Picture size; every captured frame must have it.
    fn size(&self) -> (u32, u32);
    /// Frames per second the capturer is asked for.
    fn fps(&self) -> u32;
    /// The next picture, or `None` to skip this tick.
    fn capture(&mut self) -> Option<VideoFrame>;
}

/// Supplies 20 ms blocks of 48 kHz mono PCM.
pub trait AudioCapturer: Send {
    fn capture(&mut self) -> Option<AudioFrame>;
}

/// Supplies already encoded frames (e.g. read from an IVF file): they are encrypted and sent as
/// they are, without re-encoding.
pub trait EncodedVideoSource: Send {
    fn fps(&self) -> u32;
    fn next_frame(&mut self) -> Option<Vec<u8>>;
    /// The codec of the frames (H.264 as Annex B); VP8 unless the source says otherwise.
    fn codec(&self) -> VideoCodec {
        VideoCodec::Vp8
    }
}

/// The built-in moving test pattern.
pub struct TestPatternCapturer {
    pattern: TestPattern,
    fps: u32,
    n: u32,
}

impl TestPatternCapturer {
    pub fn new(width: u32, height: u32, fps: u32) -> Self {
        Self { pattern: TestPattern::new(width, height), fps, n: 0 }
    }
}

impl VideoCapturer for TestPatternCapturer {
    fn size(&self) -> (u32, u32) {
        (self.pattern.width, self.pattern.height)
    }
    fn fps(&self) -> u32 {
        self.fps
    }
    fn capture(&mut self) -> Option<VideoFrame> {
        let f = self.pattern.frame(self.n);
        self.n += 1;
        Some(f)
    }
}

/// The built-in tone.
pub struct ToneCapturer(pub Tone);

impl AudioCapturer for ToneCapturer {
    fn capture(&mut self) -> Option<AudioFrame> {
        Some(self.0.next_frame())
    }
}

pub enum VideoSource {
    Raw(Box<dyn VideoCapturer>),
    Encoded(Box<dyn EncodedVideoSource>),
}

/// How to publish.
pub struct PublisherSettings {
    pub name: String,
    pub video: Option<VideoSource>,
    pub audio: Option<Box<dyn AudioCapturer>>,
    pub video_bitrate_kbps: u32,
    pub audio_bitrate_bps: i32,
    /// The codec raw video is encoded with (OpenTok's `preferredVideoCodec`). The stream
    /// carries this one codec: subscribers that cannot decode it get no video. An
    /// [`EncodedVideoSource`] names its own codec instead.
    pub video_codec: VideoCodec,
}

impl PublisherSettings {
    /// Test pattern (320x240 at 30 fps) and a 440 Hz tone.
    pub fn test_pattern(name: &str) -> Self {
        Self::with_pattern(name, 320, 240, 30)
    }

    pub fn with_pattern(name: &str, width: u32, height: u32, fps: u32) -> Self {
        Self {
            name: name.into(),
            video: Some(VideoSource::Raw(Box::new(TestPatternCapturer::new(width, height, fps)))),
            audio: Some(Box::new(ToneCapturer(Tone::new(440.0)))),
            video_bitrate_kbps: 800,
            audio_bitrate_bps: 32_000,
            video_codec: VideoCodec::default(),
        }
    }

    /// The same settings with raw video encoded as `codec`.
    pub fn with_video_codec(mut self, codec: VideoCodec) -> Self {
        self.video_codec = codec;
        self
    }
}

pub(crate) enum VideoPipeline {
    Raw { capturer: Box<dyn VideoCapturer>, encoder: VideoEncoder, codec: VideoCodec },
    Encoded(Box<dyn EncodedVideoSource>),
}

impl VideoPipeline {
    pub(crate) fn new(source: VideoSource, codec: VideoCodec, bitrate_kbps: u32) -> Result<(Self, u32), ClientError> {
        Ok(match source {
            VideoSource::Raw(capturer) => {
                let (w, h) = capturer.size();
                let fps = capturer.fps().clamp(1, 120);
                let encoder = VideoEncoder::new(codec, w, h, fps, bitrate_kbps)?;
                (Self::Raw { capturer, encoder, codec }, fps)
            }
            VideoSource::Encoded(src) => {
                let fps = src.fps().clamp(1, 120);
                (Self::Encoded(src), fps)
            }
        })
    }

    /// The codec of the frames `next` returns.
    pub(crate) fn codec(&self) -> VideoCodec {
        match self {
            Self::Raw { codec, .. } => *codec,
            Self::Encoded(src) => src.codec(),
        }
    }

    pub(crate) fn request_key_frame(&mut self) {
        if let Self::Raw { encoder, .. } = self {
            encoder.request_key_frame();
        }
    }

    /// Takes this tick's picture (or encoded frame) and drops it: the publisher is not sending
    /// video, and its source must not back up meanwhile.
    pub(crate) fn skip(&mut self) {
        match self {
            Self::Raw { capturer, .. } => drop(capturer.capture()),
            Self::Encoded(src) => drop(src.next_frame()),
        }
    }

    /// Encoded frames for this tick.
    pub(crate) fn next(&mut self) -> Result<Vec<Vec<u8>>, ClientError> {
        match self {
            Self::Raw { capturer, encoder, .. } => match capturer.capture() {
                Some(frame) => Ok(encoder.encode(&frame)?.into_iter().map(|e| e.data).collect()),
                None => Ok(Vec::new()),
            },
            Self::Encoded(src) => Ok(src.next_frame().into_iter().collect()),
        }
    }
}

/// Ticks at a fixed rate without drifting.
pub(crate) struct Ticker {
    pub(crate) next: Instant,
    interval: Duration,
    pub(crate) count: u64,
}

impl Ticker {
    pub(crate) fn new(start: Instant, interval: Duration) -> Self {
        Self { next: start, interval, count: 0 }
    }

    /// True once per interval; skips ticks that are more than a second late.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        if now < self.next {
            return false;
        }
        self.count += 1;
        self.next += self.interval;
        if now.saturating_duration_since(self.next) > Duration::from_secs(1) {
            self.next = now + self.interval;
        }
        true
    }
}

pub(crate) struct AudioPipeline {
    pub(crate) capturer: Box<dyn AudioCapturer>,
    pub(crate) encoder: OpusEncoder,
}
