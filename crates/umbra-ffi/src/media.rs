//! The media hooks platform code supplies (video capturer, video and audio renderers) and the
//! bridges that feed them to the native SDK, plus the test-pattern helpers the C SDK has.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use umbra_client::media::analysis::psnr;
use umbra_client::media::pattern::TestPattern;
use umbra_client::media::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, VideoFrame as NativeFrame};

use crate::error::UmbraError;
use crate::lock;
use crate::types::{CaptureSettings, VideoFrame};

/// A video source the application implements (a camera, a screen, a file). The SDK asks for its
/// settings and starts it inside `Session::publish`, and stops it on unpublish, on disconnect or
/// when the publisher's stream ends, each on the thread of the call that causes it. Between
/// start and stop, the capturer hands pictures to the sink from any thread.
#[uniffi::export(with_foreign)]
pub trait VideoCapturer: Send + Sync {
    fn capture_settings(&self) -> CaptureSettings;
    /// Begin capturing into `sink`; false refuses (the publish fails with `Internal`).
    fn start_capture(&self, sink: Arc<FrameSink>) -> bool;
    fn stop_capture(&self);
}

/// Receives the decoded pictures of a subscriber, on its session's dispatch thread.
#[uniffi::export(with_foreign)]
pub trait VideoRenderer: Send + Sync {
    fn on_frame(&self, frame: VideoFrame);
}

/// Receives a subscriber's decoded audio: 20 ms of 48 kHz mono signed 16-bit little-endian PCM
/// per call, on its session's dispatch thread.
#[uniffi::export(with_foreign)]
pub trait AudioRenderer: Send + Sync {
    fn on_audio_data(&self, pcm: Vec<u8>);
}

/// Where a capturer puts its pictures. The encoder takes the latest one at the capture rate, so
/// a capturer faster than the rate loses pictures rather than building a queue.
#[derive(uniffi::Object)]
pub struct FrameSink {
    settings: CaptureSettings,
    latest: Mutex<Option<NativeFrame>>,
}

impl FrameSink {
    pub(crate) fn new(settings: CaptureSettings) -> Arc<Self> {
        Arc::new(FrameSink { settings, latest: Mutex::new(None) })
    }
}

#[uniffi::export]
impl FrameSink {
    /// Hands over a picture of the capture settings' size (copied).
    pub fn provide_frame(&self, frame: VideoFrame) -> Result<(), UmbraError> {
        let (w, h) = (frame.width, frame.height);
        if (w, h) != (self.settings.width, self.settings.height) {
            return Err(UmbraError::invalid(format!(
                "a {w}x{h} picture from a capturer that declared {}x{}",
                self.settings.width, self.settings.height
            )));
        }
        *lock(&self.latest) = Some(frame.into_native()?);
        Ok(())
    }

    pub fn capture_settings(&self) -> CaptureSettings {
        self.settings
    }
}

/// The native SDK's view of an application capturer.
pub(crate) struct SinkReader(pub(crate) Arc<FrameSink>);

impl umbra_client::VideoCapturer for SinkReader {
    fn size(&self) -> (u32, u32) {
        (self.0.settings.width, self.0.settings.height)
    }
    fn fps(&self) -> u32 {
        self.0.settings.fps
    }
    fn capture(&mut self) -> Option<NativeFrame> {
        lock(&self.0.latest).take()
    }
}

/// Samples an application wrote for a publisher, waiting for the encoder.
#[derive(Default)]
pub(crate) struct AudioQueue(Mutex<VecDeque<i16>>);

/// One second: a publisher that is not sending (unpublished, muted, stalled) must not make the
/// application's writes pile up; the oldest samples go first.
const AUDIO_QUEUE_MAX: usize = AUDIO_SAMPLE_RATE as usize;

impl AudioQueue {
    pub(crate) fn write(&self, pcm: &[u8]) -> Result<(), UmbraError> {
        if !pcm.len().is_multiple_of(2) {
            return Err(UmbraError::invalid(format!("{} bytes are not whole 16-bit samples", pcm.len())));
        }
        let mut q = lock(&self.0);
        q.extend(pcm.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])));
        let excess = q.len().saturating_sub(AUDIO_QUEUE_MAX);
        q.drain(..excess);
        Ok(())
    }
}

pub(crate) struct AudioQueueReader(pub(crate) Arc<AudioQueue>);

impl umbra_client::AudioCapturer for AudioQueueReader {
    fn capture(&mut self) -> Option<AudioFrame> {
        let mut q = lock(&self.0.0);
        (q.len() >= AUDIO_FRAME_SAMPLES).then(|| AudioFrame { samples: q.drain(..AUDIO_FRAME_SAMPLES).collect() })
    }
}

pub(crate) fn pcm_bytes(samples: &[i16]) -> Vec<u8> {
    samples.iter().flat_map(|s| s.to_le_bytes()).collect()
}

/// Picture `n` of the built-in test pattern (what a test-pattern publisher sends as its n-th
/// picture). Sizes as for `CaptureSettings`.
#[uniffi::export]
pub fn test_pattern_frame(width: u32, height: u32, n: u32) -> Result<VideoFrame, UmbraError> {
    CaptureSettings { width, height, fps: 1 }.check()?;
    Ok(VideoFrame::from_native(TestPattern::new(width, height).frame(n)))
}

/// The frame number a test-pattern picture carries in its top strip (read back from a decoded,
/// lossy picture); `None` when the picture is too small to carry one or is not valid I420.
#[uniffi::export]
pub fn test_pattern_read_frame_number(frame: VideoFrame) -> Option<u32> {
    TestPattern::read_frame_number(&frame.into_native().ok()?)
}

/// PSNR in dB of `decoded` against `reference` over the three planes; `None` when their sizes
/// differ or one is not valid I420; infinity when they are identical.
#[uniffi::export]
pub fn video_frame_psnr(reference: VideoFrame, decoded: VideoFrame) -> Option<f64> {
    psnr(&reference.into_native().ok()?, &decoded.into_native().ok()?)
}
