//! What a publisher sends: settings, media sources, and its per-track encryption.

use std::time::{Duration, Instant};

use str0m::media::Rid;

use crate::error::ClientError;
use crate::media::opus::OpusEncoder;
use crate::media::pattern::{TestPattern, Tone};
use crate::media::scale::downscale;
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

/// How to publish, beyond [`PublisherSettings`] (which applications build as a struct literal,
/// so it gains no fields): [`crate::Session::publish_with`]. The default is what
/// [`crate::Session::publish`] does.
///
/// Non-exhaustive: later versions add options; build it with the methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PublishOptions {
    /// In routed sessions, raw VP8 camera video is sent as up to three simulcast layers (full,
    /// half and quarter size; only layers at least [`MIN_LAYER_HEIGHT`] high), so the router can
    /// forward each subscriber the size it wants or can take. Each layer costs an encoder.
    /// Pictures less than [`MIN_SIMULCAST_HEIGHT`] high are sent as one layer all the same.
    /// [`PublisherSettings::video_bitrate_kbps`] applies to single-layer video only; the layers'
    /// bitrates follow their sizes (about 2.5 Mbit/s, 500 and 150 kbit/s at 720p).
    pub simulcast: bool,
    /// Send the RFC 6464 audio level of each Opus frame in an RTP header extension, from which
    /// the router finds the active speaker. The level travels in clear, outside end-to-end
    /// encryption: turn it off where even how loudly someone speaks must stay private.
    pub audio_level: bool,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self { simulcast: true, audio_level: true }
    }
}

impl PublishOptions {
    pub fn with_simulcast(mut self, simulcast: bool) -> Self {
        self.simulcast = simulcast;
        self
    }

    pub fn with_audio_level(mut self, audio_level: bool) -> Self {
        self.audio_level = audio_level;
        self
    }
}

/// Smaller simulcast layers than this many pixels high are not sent: a picture that small
/// helps no subscriber (docs/signaling.md § Simulcast layers).
pub const MIN_LAYER_HEIGHT: u32 = 80;

/// Pictures less high than this are sent without simulcast: their half would be a thumbnail
/// barely worth its encoder, and libwebrtc draws the line at the same place (480x270 is the
/// smallest size it sends two layers of).
pub const MIN_SIMULCAST_HEIGHT: u32 = 270;

/// One simulcast layer's size and bitrate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LayerConfig {
    pub(crate) rid: &'static str,
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) bitrate_kbps: u32,
}

/// The layers for a picture of `width` x `height`, smallest first (the order of
/// `a=simulcast:send`): the full size, then each half the width and height of the next (rounded
/// down to even, as the encoders need), while at least `MIN_LAYER_HEIGHT` high; at most three.
pub(crate) fn simulcast_layers(width: u32, height: u32) -> Vec<LayerConfig> {
    // Rids from the top: full, half, quarter. Bitrates at 720p, WebRTC's usual ladder.
    const RIDS: [&str; 3] = ["f", "h", "q"];
    const KBPS_720P: [f64; 3] = [2500.0, 500.0, 150.0];
    const MIN_KBPS: f64 = 50.0;
    // Bits scale with pixels; above twice 720p's pixels the 720p ladder times two is plenty.
    let scale = (f64::from(width) * f64::from(height) / (1280.0 * 720.0)).min(2.0);
    let mut layers = Vec::new();
    let (mut w, mut h) = (width, height);
    for (i, rid) in RIDS.iter().enumerate() {
        if i > 0 && (h < MIN_LAYER_HEIGHT || w < 2 || h < 2) {
            break;
        }
        let bitrate_kbps = (KBPS_720P[i] * scale).max(MIN_KBPS).round() as u32;
        layers.push(LayerConfig { rid, width: w, height: h, bitrate_kbps });
        w = (w / 2) & !1;
        h = (h / 2) & !1;
    }
    layers.reverse();
    layers
}

/// What a publisher's simulcast layer has done, in [`PublisherStats`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerStats {
    /// The layer's rid; `None` for video sent without simulcast.
    pub rid: Option<String>,
    pub width: u32,
    pub height: u32,
    /// Pictures encoded (a paused layer encodes none).
    pub frames_encoded: u64,
    pub key_frames: u64,
    /// Encoded bytes, before encryption and packetization.
    pub bytes_encoded: u64,
    /// The router wants no subscriber to get this layer (`layers_wanted`): it is not encoded.
    pub paused: bool,
}

/// What a publisher's video encoders have done: one entry per layer, smallest first (one entry
/// without simulcast; none for encoded sources or audio-only publishers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublisherStats {
    pub layers: Vec<LayerStats>,
}

/// One simulcast layer being sent.
pub(crate) struct SimLayer {
    pub(crate) rid: Rid,
    config: LayerConfig,
    encoder: VideoEncoder,
    stats: LayerStats,
}

/// One encoded frame of a tick, with the layer it belongs to.
pub(crate) struct OutFrame {
    pub(crate) rid: Option<Rid>,
    pub(crate) data: Vec<u8>,
}

pub(crate) enum VideoPipeline {
    Raw {
        capturer: Box<dyn VideoCapturer>,
        encoder: VideoEncoder,
        codec: VideoCodec,
        stats: LayerStats,
    },
    /// VP8 in several sizes, each from its own encoder (smallest first).
    Simulcast {
        capturer: Box<dyn VideoCapturer>,
        layers: Vec<SimLayer>,
    },
    Encoded(Box<dyn EncodedVideoSource>),
}

impl VideoPipeline {
    /// `simulcast`: send raw VP8 as layers when the picture is large enough for two.
    pub(crate) fn new(
        source: VideoSource,
        codec: VideoCodec,
        bitrate_kbps: u32,
        simulcast: bool,
    ) -> Result<(Self, u32), ClientError> {
        Ok(match source {
            VideoSource::Raw(capturer) => {
                let (w, h) = capturer.size();
                let fps = capturer.fps().clamp(1, 120);
                let configs = simulcast_layers(w, h);
                if simulcast && codec == VideoCodec::Vp8 && h >= MIN_SIMULCAST_HEIGHT && configs.len() > 1 {
                    let layers = configs
                        .into_iter()
                        .map(|c| {
                            Ok(SimLayer {
                                rid: Rid::from(c.rid),
                                config: c,
                                encoder: VideoEncoder::new(codec, c.width, c.height, fps, c.bitrate_kbps)?,
                                stats: LayerStats::new(Some(c.rid), c.width, c.height),
                            })
                        })
                        .collect::<Result<Vec<_>, ClientError>>()?;
                    return Ok((Self::Simulcast { capturer, layers }, fps));
                }
                let encoder = VideoEncoder::new(codec, w, h, fps, bitrate_kbps)?;
                (Self::Raw { capturer, encoder, codec, stats: LayerStats::new(None, w, h) }, fps)
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
            Self::Simulcast { .. } => VideoCodec::Vp8,
            Self::Encoded(src) => src.codec(),
        }
    }

    /// The rids to offer, smallest first; empty without simulcast.
    pub(crate) fn rids(&self) -> Vec<Rid> {
        match self {
            Self::Simulcast { layers, .. } => layers.iter().map(|l| l.rid).collect(),
            _ => Vec::new(),
        }
    }

    /// The size subscribers see at most: the largest layer's.
    pub(crate) fn dimensions(&self) -> Option<(u32, u32)> {
        match self {
            Self::Raw { capturer, .. } | Self::Simulcast { capturer, .. } => Some(capturer.size()),
            Self::Encoded(_) => None,
        }
    }

    /// The next frame of every layer (`rid` `None`), or of that one layer, is a key frame.
    pub(crate) fn request_key_frame(&mut self, rid: Option<Rid>) {
        match self {
            Self::Raw { encoder, .. } => encoder.request_key_frame(),
            Self::Simulcast { layers, .. } => {
                for l in layers.iter_mut().filter(|l| rid.is_none_or(|r| r == l.rid)) {
                    l.encoder.request_key_frame();
                }
            }
            Self::Encoded(_) => {}
        }
    }

    /// Sends only the layers named (`layers_wanted`); the others are not encoded until named
    /// again, and a layer that resumes starts with a key frame (its subscribers' decoders have
    /// nothing to go on). Without simulcast there is nothing to pause. Returns whether anything
    /// changed.
    pub(crate) fn set_wanted_layers(&mut self, wanted: &[Rid]) -> bool {
        let Self::Simulcast { layers, .. } = self else { return false };
        let mut changed = false;
        for l in layers.iter_mut() {
            let paused = !wanted.contains(&l.rid);
            if l.stats.paused != paused {
                changed = true;
                l.stats.paused = paused;
                if !paused {
                    l.encoder.request_key_frame();
                }
            }
        }
        changed
    }

    /// Every layer sends again (a new router, which has not said yet what it wants).
    pub(crate) fn resume_all_layers(&mut self) {
        let rids = self.rids();
        self.set_wanted_layers(&rids);
    }

    pub(crate) fn stats(&self) -> PublisherStats {
        let layers = match self {
            Self::Raw { stats, .. } => vec![stats.clone()],
            Self::Simulcast { layers, .. } => layers.iter().map(|l| l.stats.clone()).collect(),
            Self::Encoded(_) => Vec::new(),
        };
        PublisherStats { layers }
    }

    /// Takes this tick's picture (or encoded frame) and drops it: the publisher is not sending
    /// video, and its source must not back up meanwhile.
    pub(crate) fn skip(&mut self) {
        match self {
            Self::Raw { capturer, .. } | Self::Simulcast { capturer, .. } => drop(capturer.capture()),
            Self::Encoded(src) => drop(src.next_frame()),
        }
    }

    /// Encoded frames for this tick, of every layer not paused.
    pub(crate) fn next(&mut self) -> Result<Vec<OutFrame>, ClientError> {
        match self {
            Self::Raw { capturer, encoder, stats, .. } => match capturer.capture() {
                Some(frame) => {
                    let pictures = encoder.encode(&frame)?;
                    Ok(pictures
                        .into_iter()
                        .map(|p| {
                            stats.count(p.key_frame, p.data.len());
                            OutFrame { rid: None, data: p.data }
                        })
                        .collect())
                }
                None => Ok(Vec::new()),
            },
            Self::Simulcast { capturer, layers } => {
                let Some(frame) = capturer.capture() else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                // Largest first, each smaller picture scaled from the smallest one made so far
                // (less work than from the full picture each time); paused layers cost nothing.
                let mut source: Option<VideoFrame> = None;
                for l in layers.iter_mut().rev() {
                    if l.stats.paused {
                        continue;
                    }
                    let from = source.as_ref().unwrap_or(&frame);
                    let picture = if (from.width, from.height) == (l.config.width, l.config.height) {
                        None
                    } else {
                        Some(downscale(from, l.config.width, l.config.height).ok_or_else(|| {
                            ClientError::InvalidArgument(format!(
                                "the capturer's picture is {}x{}, smaller than its layer {}x{}",
                                from.width, from.height, l.config.width, l.config.height
                            ))
                        })?)
                    };
                    let pictures = l.encoder.encode(picture.as_ref().unwrap_or(from))?;
                    for p in pictures {
                        l.stats.count(p.key_frame, p.data.len());
                        out.push(OutFrame { rid: Some(l.rid), data: p.data });
                    }
                    if picture.is_some() {
                        source = picture;
                    }
                }
                Ok(out)
            }
            Self::Encoded(src) => Ok(src.next_frame().into_iter().map(|data| OutFrame { rid: None, data }).collect()),
        }
    }
}

impl LayerStats {
    fn new(rid: Option<&str>, width: u32, height: u32) -> Self {
        Self {
            rid: rid.map(str::to_string),
            width,
            height,
            frames_encoded: 0,
            key_frames: 0,
            bytes_encoded: 0,
            paused: false,
        }
    }

    fn count(&mut self, key_frame: bool, bytes: usize) {
        self.frames_encoded += 1;
        self.key_frames += u64::from(key_frame);
        self.bytes_encoded += bytes as u64;
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
    /// Send each frame's RFC 6464 level ([`PublishOptions::audio_level`]).
    pub(crate) send_level: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(w: u32, h: u32) -> Vec<(&'static str, u32, u32)> {
        simulcast_layers(w, h).iter().map(|l| (l.rid, l.width, l.height)).collect()
    }

    #[test]
    fn layers_are_smallest_first_halving_and_at_least_80_high() {
        assert_eq!(sizes(1280, 720), [("q", 320, 180), ("h", 640, 360), ("f", 1280, 720)]);
        assert_eq!(sizes(640, 360), [("q", 160, 90), ("h", 320, 180), ("f", 640, 360)]);
        // 60 high would be below the limit: two layers.
        assert_eq!(sizes(320, 240), [("h", 160, 120), ("f", 320, 240)]);
        // Halves are rounded down to even sizes.
        assert_eq!(sizes(642, 362), [("q", 160, 90), ("h", 320, 180), ("f", 642, 362)]);
        // Too small for a second layer: one, which the pipeline sends without simulcast.
        assert_eq!(sizes(160, 120), [("f", 160, 120)]);
    }

    #[test]
    fn layer_bitrates_follow_the_720p_ladder_scaled_to_the_size() {
        let kbps = |w, h| simulcast_layers(w, h).iter().map(|l| l.bitrate_kbps).collect::<Vec<_>>();
        assert_eq!(kbps(1280, 720), [150, 500, 2500]);
        // A quarter of the pixels: a quarter of the bits, never below 50 kbit/s.
        assert_eq!(kbps(640, 360), [50, 125, 625]);
        assert_eq!(kbps(3840, 2160), [300, 1000, 5000]);
    }

    #[test]
    fn paused_layers_are_not_encoded_and_resume_with_a_key_frame() {
        let source = VideoSource::Raw(Box::new(TestPatternCapturer::new(640, 360, 30)));
        let (mut v, _) = VideoPipeline::new(source, VideoCodec::Vp8, 800, true).unwrap();
        let rid = |s: &str| Rid::from(s);
        assert_eq!(v.rids(), [rid("q"), rid("h"), rid("f")]);
        let frames = v.next().unwrap();
        let mut got: Vec<String> = frames.iter().map(|f| f.rid.unwrap().to_string()).collect();
        got.sort();
        assert_eq!(got, ["f", "h", "q"]);
        // Only the quarter layer wanted.
        assert!(v.set_wanted_layers(&[rid("q")]));
        assert!(!v.set_wanted_layers(&[rid("q")]));
        for _ in 0..5 {
            assert!(v.next().unwrap().iter().all(|f| f.rid == Some(rid("q"))));
        }
        let s = v.stats();
        assert_eq!(
            s.layers.iter().map(|l| (l.frames_encoded, l.paused)).collect::<Vec<_>>(),
            [(6, false), (1, true), (1, true)]
        );
        // "f" again: its first frame is a key frame, and the others' are not forced.
        v.set_wanted_layers(&[rid("q"), rid("f")]);
        let frames = v.next().unwrap();
        let f = frames.iter().find(|f| f.rid == Some(rid("f"))).unwrap();
        assert!(crate::media::keyframe::is_key_frame(VideoCodec::Vp8, &f.data));
        let q = frames.iter().find(|f| f.rid == Some(rid("q"))).unwrap();
        assert!(!crate::media::keyframe::is_key_frame(VideoCodec::Vp8, &q.data));
        assert_eq!(v.stats().layers[2].key_frames, 2);
        // A key frame request names one layer.
        v.request_key_frame(Some(rid("q")));
        let frames = v.next().unwrap();
        for f in &frames {
            let key = crate::media::keyframe::is_key_frame(VideoCodec::Vp8, &f.data);
            assert_eq!(key, f.rid == Some(rid("q")), "{:?}", f.rid);
        }
    }

    #[test]
    fn simulcast_is_vp8_only_and_can_be_turned_off() {
        let pipeline = |codec, simulcast| {
            let source = VideoSource::Raw(Box::new(TestPatternCapturer::new(640, 360, 30)));
            VideoPipeline::new(source, codec, 800, simulcast).unwrap().0
        };
        assert_eq!(pipeline(VideoCodec::Vp8, true).rids().len(), 3);
        assert!(pipeline(VideoCodec::Vp8, false).rids().is_empty());
        assert!(pipeline(VideoCodec::Vp9, true).rids().is_empty());
        let small = VideoSource::Raw(Box::new(TestPatternCapturer::new(320, 240, 30)));
        assert!(VideoPipeline::new(small, VideoCodec::Vp8, 800, true).unwrap().0.rids().is_empty());
        let wide = VideoSource::Raw(Box::new(TestPatternCapturer::new(480, 270, 30)));
        assert_eq!(VideoPipeline::new(wide, VideoCodec::Vp8, 800, true).unwrap().0.rids().len(), 2);
        assert_eq!(pipeline(VideoCodec::Vp8, false).stats().layers.len(), 1);
    }
}
