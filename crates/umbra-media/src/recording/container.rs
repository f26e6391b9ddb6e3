//! The two container writers the recorder uses, behind one type: WebM (libwebm through the
//! `webm` crate) for VP8, VP9 and Opus, and MP4 (the `muxide` crate) for H.264, which WebM does
//! not carry. Both receive already-encoded frames in time order (see `interleave`), so neither
//! re-encodes anything.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use webm::mux::{AudioCodecId, AudioTrack, Segment, SegmentBuilder, SegmentMode, VideoCodecId, VideoTrack, Writer};

use super::bitstream::opus_head;

/// The video codec of a recorded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    Vp9,
    H264,
}

impl VideoCodec {
    /// The container this codec is written to, as a file extension.
    pub fn extension(self) -> &'static str {
        match self {
            VideoCodec::Vp8 | VideoCodec::Vp9 => "webm",
            VideoCodec::H264 => "mp4",
        }
    }
}

/// What a file holds, decided before it is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Codec and picture size of the video track, if any.
    pub video: Option<(VideoCodec, u32, u32)>,
    /// Channel count of the Opus track, if any.
    pub audio_channels: Option<u8>,
}

impl Layout {
    pub fn extension(&self) -> &'static str {
        self.video.map_or("webm", |(c, _, _)| c.extension())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("cannot create {path}: {source}")]
    Create { path: PathBuf, source: std::io::Error },
    #[error("the WebM muxer refused {what} for {path}: {source}")]
    Webm { path: PathBuf, what: &'static str, source: webm::mux::Error },
    #[error("the MP4 muxer refused {what} for {path}: {source}")]
    Mp4 { path: PathBuf, what: &'static str, source: muxide::api::MuxerError },
    #[error("the WebM muxer could not finish {path} (no frame was written, or the disk failed)")]
    WebmFinalize { path: PathBuf },
    #[error("{path} has no track for this frame")]
    NoSuchTrack { path: PathBuf },
    #[error("a file needs at least one track")]
    Empty,
}

type WebmSegment = Segment<BufWriter<File>>;

enum Inner {
    Webm {
        segment: WebmSegment,
        video: Option<VideoTrack>,
        audio: Option<AudioTrack>,
    },
    // Boxed: muxide's muxer keeps its sample tables inline and dwarfs the WebM variant.
    Mp4 {
        muxer: Box<muxide::api::Muxer<BufWriter<File>>>,
        has_audio: bool,
        last_video_s: Option<f64>,
        last_audio_s: Option<f64>,
    },
}

/// One open output file.
pub struct Container {
    path: PathBuf,
    inner: Inner,
}

impl Container {
    pub fn create(path: &Path, layout: &Layout) -> Result<Self, ContainerError> {
        if layout.video.is_none() && layout.audio_channels.is_none() {
            return Err(ContainerError::Empty);
        }
        let file = File::create(path).map_err(|source| ContainerError::Create { path: path.to_owned(), source })?;
        let out = BufWriter::new(file);
        let inner = match layout.video {
            Some((VideoCodec::H264, w, h)) => Self::open_mp4(path, out, w, h, layout.audio_channels)?,
            _ => Self::open_webm(path, out, layout)?,
        };
        Ok(Self { path: path.to_owned(), inner })
    }

    fn open_webm(path: &Path, out: BufWriter<File>, layout: &Layout) -> Result<Inner, ContainerError> {
        let webm_err = |what| move |source| ContainerError::Webm { path: path.to_owned(), what, source };
        let mut builder = SegmentBuilder::new(Writer::new(out))
            .map_err(webm_err("the segment"))?
            .set_mode(SegmentMode::File)
            .map_err(webm_err("file mode"))?
            .set_writing_app(concat!("umbra-media record ", env!("CARGO_PKG_VERSION")))
            .map_err(webm_err("the writing app"))?;
        let mut video = None;
        if let Some((codec, w, h)) = layout.video {
            let id = if codec == VideoCodec::Vp9 { VideoCodecId::VP9 } else { VideoCodecId::VP8 };
            let (b, t) = builder.add_video_track(w, h, id, None).map_err(webm_err("the video track"))?;
            builder = b;
            video = Some(t);
        }
        let mut audio = None;
        if let Some(channels) = layout.audio_channels {
            let (b, t) = builder
                .add_audio_track(48_000, channels as u32, AudioCodecId::Opus, None)
                .map_err(webm_err("the audio track"))?;
            builder = b.set_codec_private(t, &opus_head(channels)).map_err(webm_err("the OpusHead"))?;
            audio = Some(t);
        }
        Ok(Inner::Webm { segment: builder.build(), video, audio })
    }

    fn open_mp4(path: &Path, out: BufWriter<File>, w: u32, h: u32, audio: Option<u8>) -> Result<Inner, ContainerError> {
        use muxide::api::{AudioCodec, MuxerBuilder, VideoCodec as MxVideo};
        // 30 fps is only the track's nominal rate; every sample carries its own time.
        let mut builder = MuxerBuilder::new(out).video(MxVideo::H264, w, h, 30.0);
        if let Some(channels) = audio {
            builder = builder.audio(AudioCodec::Opus, 48_000, channels as u16);
        }
        let muxer = builder.build().map_err(|source| ContainerError::Mp4 {
            path: path.to_owned(),
            what: "the tracks",
            source,
        })?;
        Ok(Inner::Mp4 { muxer: Box::new(muxer), has_audio: audio.is_some(), last_video_s: None, last_audio_s: None })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes one video frame at `at_ns` since the file's start.
    pub fn write_video(&mut self, at_ns: u64, keyframe: bool, data: &[u8]) -> Result<(), ContainerError> {
        let path = &self.path;
        match &mut self.inner {
            Inner::Webm { segment, video, .. } => {
                let track = video.ok_or_else(|| ContainerError::NoSuchTrack { path: path.clone() })?;
                segment.add_frame(track, data, at_ns, keyframe).map_err(|source| ContainerError::Webm {
                    path: path.clone(),
                    what: "a video frame",
                    source,
                })
            }
            Inner::Mp4 { muxer, last_video_s, .. } => {
                // MP4 sample times must rise strictly; two frames in one microsecond are a
                // publisher's clock glitch, not a reason to lose one.
                let s = strictly_after(*last_video_s, at_ns);
                *last_video_s = Some(s);
                muxer.write_video(s, data, keyframe).map_err(|source| ContainerError::Mp4 {
                    path: path.clone(),
                    what: "a video frame",
                    source,
                })
            }
        }
    }

    /// False while an MP4 file has no video sample: muxide refuses audio before the first one.
    pub fn takes_audio_yet(&self) -> bool {
        match &self.inner {
            Inner::Webm { .. } => true,
            Inner::Mp4 { last_video_s, .. } => last_video_s.is_some(),
        }
    }

    /// Writes one Opus packet at `at_ns` since the file's start.
    pub fn write_audio(&mut self, at_ns: u64, data: &[u8]) -> Result<(), ContainerError> {
        let path = &self.path;
        match &mut self.inner {
            Inner::Webm { segment, audio, .. } => {
                let track = audio.ok_or_else(|| ContainerError::NoSuchTrack { path: path.clone() })?;
                segment.add_frame(track, data, at_ns, true).map_err(|source| ContainerError::Webm {
                    path: path.clone(),
                    what: "an audio frame",
                    source,
                })
            }
            Inner::Mp4 { muxer, has_audio, last_audio_s, .. } => {
                if !*has_audio {
                    return Err(ContainerError::NoSuchTrack { path: path.clone() });
                }
                let s = (at_ns as f64 / 1e9).max(last_audio_s.unwrap_or(0.0));
                *last_audio_s = Some(s);
                muxer.write_audio(s, data).map_err(|source| ContainerError::Mp4 {
                    path: path.clone(),
                    what: "an audio frame",
                    source,
                })
            }
        }
    }

    /// Writes the index (cues, duration, sample tables) and closes the file.
    pub fn finish(self, duration_ns: u64) -> Result<PathBuf, ContainerError> {
        let Container { path, inner } = self;
        match inner {
            Inner::Webm { segment, .. } => {
                use std::io::Write;
                // libwebm's Duration is in its timecode scale (1 ms by default).
                let writer = segment
                    .finalize(Some(duration_ns / 1_000_000))
                    .map_err(|_| ContainerError::WebmFinalize { path: path.clone() })?;
                writer.into_inner().flush().map_err(|source| ContainerError::Create { path: path.clone(), source })?;
            }
            Inner::Mp4 { mut muxer, .. } => {
                use std::io::Write;
                muxer.finish_in_place().map_err(|source| ContainerError::Mp4 {
                    path: path.clone(),
                    what: "the sample tables",
                    source,
                })?;
                muxer.into_writer().flush().map_err(|source| ContainerError::Create { path: path.clone(), source })?;
            }
        }
        Ok(path)
    }
}

fn strictly_after(last: Option<f64>, at_ns: u64) -> f64 {
    let s = at_ns as f64 / 1e9;
    match last {
        Some(l) if s <= l => l + 1e-6,
        _ => s,
    }
}
