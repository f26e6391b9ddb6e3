//! Recording one stream: when its file opens, what it holds, and where each frame goes.
//!
//! A file opens at the stream's first video key frame (or its first audio packet, for a stream
//! without video), so every file starts decodable. Video after a gap the recorder could not
//! decrypt (another secret, or a publisher that does not encrypt) waits for the next key frame
//! for the same reason. A track that appears later than the file opened (video switched on in a
//! stream announced without it) or a codec that changes starts a new part rather than being
//! lost or corrupting the file.
//!
//! Bound: before the file opens, at most [`MAX_PENDING_AUDIO`] audio packets wait for the first
//! key frame; older ones are dropped (counted in [`StreamSummary::dropped_frames`]).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::bitstream::{opus_channels, vp8_dimensions, vp9_dimensions};
use super::container::{Container, ContainerError, Layout, VideoCodec};
use super::interleave::{Interleaver, TrackKind};
use super::timeline::TrackClock;

/// Ten seconds of 20 ms Opus packets.
pub const MAX_PENDING_AUDIO: usize = 500;

/// Picture size used when neither the key frame nor the stream's announcement gives one.
const FALLBACK_SIZE: (u32, u32) = (640, 480);

/// A decrypted, still-encoded frame as the session delivered it.
#[derive(Debug, Clone)]
pub struct EncodedIn {
    pub arrival: Instant,
    /// Media time in `clock_rate` ticks, monotonic for the track (the SDK unwraps RTP time).
    pub ticks: u64,
    pub clock_rate: u32,
    pub media: MediaKind,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `contiguous`: no frame is missing before this one (false after loss repair gave up).
    Video {
        codec: VideoCodec,
        keyframe: bool,
        contiguous: bool,
    },
    Audio,
}

/// What the stream is, from its announcement.
#[derive(Debug, Clone)]
pub struct StreamInfo {
    pub stream_id: String,
    pub connection_id: String,
    pub name: String,
    pub has_video: bool,
    pub has_audio: bool,
    pub announced_size: Option<(u32, u32)>,
}

/// One finished file.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StreamSummary {
    pub file: PathBuf,
    pub stream_id: String,
    pub connection_id: String,
    pub name: String,
    pub part: u32,
    pub video_codec: Option<&'static str>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub audio_channels: Option<u8>,
    pub duration_ms: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Frames received but not written: video before a key frame, audio older than the
    /// pre-open bound or than an MP4 file's first picture.
    pub dropped_frames: u64,
    /// Frames that arrived later than the reorder window and were written late.
    pub late_frames: u64,
}

struct OpenFile {
    container: Container,
    layout: Layout,
    start: Instant,
    video_clock: Option<TrackClock>,
    audio_clock: Option<TrackClock>,
    interleaver: Interleaver,
    video_frames: u64,
    audio_frames: u64,
    last_ns: u64,
    /// Audio an MP4 file could not take yet (see `write_frames`).
    dropped_before_video: u64,
    part: u32,
}

pub struct StreamRecorder {
    info: StreamInfo,
    dir: PathBuf,
    file: Option<OpenFile>,
    pending_audio: VecDeque<EncodedIn>,
    /// Video deltas are dropped until a key frame: at the start and after an undecryptable gap.
    need_keyframe: bool,
    parts: u32,
    dropped: u64,
    finished: Vec<StreamSummary>,
}

fn codec_name(c: VideoCodec) -> &'static str {
    match c {
        VideoCodec::Vp8 => "vp8",
        VideoCodec::Vp9 => "vp9",
        VideoCodec::H264 => "h264",
    }
}

impl StreamRecorder {
    pub fn new(info: StreamInfo, dir: &Path) -> Self {
        Self {
            info,
            dir: dir.to_owned(),
            file: None,
            pending_audio: VecDeque::new(),
            need_keyframe: true,
            parts: 0,
            dropped: 0,
            finished: Vec::new(),
        }
    }

    pub fn info(&self) -> &StreamInfo {
        &self.info
    }

    /// Frames were lost to decryption (a mismatch): the next video written must be a key frame.
    pub fn decryption_gap(&mut self) {
        self.need_keyframe = true;
    }

    /// Whether a file is open (something decodable has been written).
    pub fn recording(&self) -> Option<&Path> {
        self.file.as_ref().map(|f| f.container.path())
    }

    /// Files finished so far (parts), oldest first.
    pub fn take_finished(&mut self) -> Vec<StreamSummary> {
        std::mem::take(&mut self.finished)
    }

    pub fn push(&mut self, frame: EncodedIn) -> Result<(), ContainerError> {
        match frame.media {
            MediaKind::Audio => self.push_audio(frame),
            MediaKind::Video { codec, keyframe, contiguous } => {
                if !contiguous {
                    // A delta after a lost frame would write garbage until the next key frame;
                    // the file skips to that key frame instead.
                    self.need_keyframe = true;
                }
                self.push_video(frame, codec, keyframe)
            }
        }
    }

    fn push_audio(&mut self, frame: EncodedIn) -> Result<(), ContainerError> {
        let Some(file) = &mut self.file else {
            if self.info.has_video {
                if self.pending_audio.len() == MAX_PENDING_AUDIO {
                    self.pending_audio.pop_front();
                    self.dropped += 1;
                }
                self.pending_audio.push_back(frame);
                return Ok(());
            }
            let layout = Layout { video: None, audio_channels: Some(opus_channels(&frame.data).unwrap_or(1)) };
            self.open(layout, frame.arrival)?;
            return self.push_audio(frame);
        };
        if file.layout.audio_channels.is_none() {
            // Audio the file was not opened for: a new part that has it.
            let video = file.layout.video;
            let channels = opus_channels(&frame.data).unwrap_or(1);
            self.rotate()?;
            if video.is_some() {
                // The new part starts at the next key frame like any other.
                self.info.has_audio = true;
                self.pending_audio.push_back(frame);
                return Ok(());
            }
            self.open(Layout { video: None, audio_channels: Some(channels) }, frame.arrival)?;
            return self.push_audio(frame);
        }
        let clock = file
            .audio_clock
            .get_or_insert_with(|| TrackClock::anchor(file.start, frame.arrival, frame.ticks, frame.clock_rate));
        let at = clock.position_ns(frame.ticks);
        file.interleaver.push(at, TrackKind::Audio, true, frame.data);
        self.flush_ready()
    }

    fn push_video(&mut self, frame: EncodedIn, codec: VideoCodec, keyframe: bool) -> Result<(), ContainerError> {
        if self.need_keyframe && !keyframe {
            self.dropped += 1;
            return Ok(());
        }
        let same_codec = self.file.as_ref().map(|f| f.layout.video.map(|(c, _, _)| c));
        match same_codec {
            Some(Some(c)) if c == codec => {}
            Some(_) => {
                // No video track yet, or another codec: a new part opened at this key frame.
                if !keyframe {
                    self.dropped += 1;
                    return Ok(());
                }
                self.rotate()?;
                self.open_at_keyframe(&frame, codec)?;
            }
            None => self.open_at_keyframe(&frame, codec)?,
        }
        self.need_keyframe = false;
        let Some(file) = &mut self.file else { return Ok(()) };
        let clock = file
            .video_clock
            .get_or_insert_with(|| TrackClock::anchor(file.start, frame.arrival, frame.ticks, frame.clock_rate));
        let at = clock.position_ns(frame.ticks);
        file.interleaver.push(at, TrackKind::Video, keyframe, frame.data);
        self.flush_ready()
    }

    fn open_at_keyframe(&mut self, key: &EncodedIn, codec: VideoCodec) -> Result<(), ContainerError> {
        let parsed = match codec {
            VideoCodec::Vp8 => vp8_dimensions(&key.data),
            VideoCodec::Vp9 => vp9_dimensions(&key.data),
            // H.264's size is in the SPS (exp-Golomb coded); players read it from there, so the
            // track header's nominal size comes from the stream's announcement.
            VideoCodec::H264 => None,
        };
        let (w, h) = parsed.or(self.info.announced_size).unwrap_or(FALLBACK_SIZE);
        let audio_channels = if self.info.has_audio || !self.pending_audio.is_empty() {
            Some(self.pending_audio.front().and_then(|f| opus_channels(&f.data)).unwrap_or(1))
        } else {
            None
        };
        // MP4 (muxide) wants its first sample to be video: audio from before the key frame is
        // dropped there; WebM keeps it, and the file starts with the oldest audio.
        let mp4 = codec == VideoCodec::H264;
        if mp4 {
            // `<=`: audio received in the same instant as the key frame would tie with it on
            // the file's clock and could be ordered first.
            while self.pending_audio.front().is_some_and(|a| a.arrival <= key.arrival) {
                self.pending_audio.pop_front();
                self.dropped += 1;
            }
        }
        let start = self.pending_audio.front().map_or(key.arrival, |a| a.arrival.min(key.arrival));
        self.open(Layout { video: Some((codec, w, h)), audio_channels }, start)?;
        let pending: Vec<EncodedIn> = self.pending_audio.drain(..).collect();
        for a in pending {
            self.push_audio(a)?;
        }
        Ok(())
    }

    fn open(&mut self, layout: Layout, start: Instant) -> Result<(), ContainerError> {
        self.parts += 1;
        let suffix = if self.parts > 1 { format!("-part{}", self.parts) } else { String::new() };
        let path = self.dir.join(format!("{}{}.{}", self.info.stream_id, suffix, layout.extension()));
        let container = Container::create(&path, &layout)?;
        self.file = Some(OpenFile {
            container,
            layout,
            start,
            video_clock: None,
            audio_clock: None,
            interleaver: Interleaver::default(),
            video_frames: 0,
            audio_frames: 0,
            last_ns: 0,
            dropped_before_video: 0,
            part: self.parts,
        });
        Ok(())
    }

    fn flush_ready(&mut self) -> Result<(), ContainerError> {
        let Some(file) = &mut self.file else { return Ok(()) };
        let ready = file.interleaver.ready();
        write_frames(file, ready)
    }

    /// Closes the current file, if any, into a summary.
    fn rotate(&mut self) -> Result<(), ContainerError> {
        let Some(mut file) = self.file.take() else { return Ok(()) };
        let rest = file.interleaver.drain();
        write_frames(&mut file, rest)?;
        // The last frame lasts about as long as a frame: 20 ms of audio or one video interval;
        // 20 ms is close enough for either at the 5 % a duration check allows.
        let duration_ns = file.last_ns + 20_000_000;
        let (video_frames, audio_frames, late_frames, part) =
            (file.video_frames, file.audio_frames, file.interleaver.late_frames, file.part);
        self.dropped += file.dropped_before_video;
        let layout = file.layout.clone();
        let path = if video_frames + audio_frames == 0 {
            // A file with no frame cannot be finalized; leave nothing behind.
            let path = file.container.path().to_owned();
            drop(file);
            let _ = std::fs::remove_file(&path);
            return Ok(());
        } else {
            file.container.finish(duration_ns)?
        };
        self.finished.push(StreamSummary {
            file: path,
            stream_id: self.info.stream_id.clone(),
            connection_id: self.info.connection_id.clone(),
            name: self.info.name.clone(),
            part,
            video_codec: layout.video.map(|(c, _, _)| codec_name(c)),
            width: layout.video.map(|(_, w, _)| w),
            height: layout.video.map(|(_, _, h)| h),
            audio_channels: layout.audio_channels,
            duration_ms: duration_ns / 1_000_000,
            video_frames,
            audio_frames,
            dropped_frames: std::mem::take(&mut self.dropped),
            late_frames,
        });
        self.need_keyframe = true;
        Ok(())
    }

    /// The stream ended (or the recorder stops): finish its file.
    pub fn finish(mut self) -> Result<Vec<StreamSummary>, ContainerError> {
        self.rotate()?;
        Ok(self.finished)
    }
}

fn write_frames(file: &mut OpenFile, frames: Vec<super::interleave::TimedFrame>) -> Result<(), ContainerError> {
    for f in frames {
        if f.track == TrackKind::Audio && !file.container.takes_audio_yet() {
            // An MP4 file must start with its key frame; audio ordered before it (a clock tie)
            // is dropped rather than refused, which would lose the rest of this batch.
            file.dropped_before_video += 1;
            continue;
        }
        match f.track {
            TrackKind::Video => {
                file.container.write_video(f.at_ns, f.keyframe, &f.data)?;
                file.video_frames += 1;
            }
            TrackKind::Audio => {
                file.container.write_audio(f.at_ns, &f.data)?;
                file.audio_frames += 1;
            }
        }
        file.last_ns = file.last_ns.max(f.at_ns);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> StreamInfo {
        StreamInfo {
            stream_id: "s".into(),
            connection_id: "c".into(),
            name: String::new(),
            has_video: true,
            has_audio: true,
            announced_size: Some((320, 240)),
        }
    }

    /// SPS, PPS and an IDR slice in Annex B, the shape the SDK hands over.
    const IDR: &[u8] =
        &[0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84];
    const OPUS: &[u8] = &[0xfc, 0xff, 0xfe];

    // The CI failure of stop 23: audio received in the same instant as the key frame was
    // ordered before it, muxide refused it, and the batch that held the key frame was lost.
    #[test]
    fn audio_tied_with_the_h264_key_frame_does_not_lose_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = StreamRecorder::new(info(), dir.path());
        let t0 = Instant::now();
        let audio = |i: u64| EncodedIn {
            arrival: t0 + std::time::Duration::from_millis(20 * i),
            ticks: 960 * i,
            clock_rate: 48_000,
            media: MediaKind::Audio,
            data: OPUS.to_vec(),
        };
        rec.push(audio(0)).unwrap();
        let video = |i: u64, keyframe: bool| EncodedIn {
            arrival: t0 + std::time::Duration::from_millis(20 * i),
            ticks: 1800 * i,
            clock_rate: 90_000,
            media: MediaKind::Video { codec: VideoCodec::H264, keyframe, contiguous: true },
            data: IDR.to_vec(),
        };
        rec.push(video(0, true)).unwrap();
        for i in 1..60 {
            rec.push(audio(i)).unwrap();
            rec.push(video(i, true)).unwrap();
        }
        let files = rec.finish().unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].video_frames, 60);
        assert!(files[0].audio_frames >= 58, "{:?}", files[0]);
    }
}
