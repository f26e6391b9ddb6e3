//! Media files: Y4M pictures and VP8 IVF frames to publish, Y4M to write what was decoded.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use umbra_client::media::{VideoCodec, VideoDecoder, VideoFrame};
use umbra_client::{EncodedVideoSource, VideoCapturer};

use crate::error::MediaCliError;

/// Files are read whole and looped; this bounds the memory a long file can take (100 s at 30 fps).
const MAX_FRAMES: usize = 3000;

/// Loops over the pictures of a Y4M file (4:2:0 only).
pub struct Y4mReader {
    frames: Vec<VideoFrame>,
    fps: u32,
    next: usize,
}

impl Y4mReader {
    pub fn open(path: &Path, fps: u32) -> Result<Self, MediaCliError> {
        let err = |m: String| MediaCliError::file(path, m);
        let mut r = BufReader::new(File::open(path).map_err(|e| err(e.to_string()))?);
        let mut header = String::new();
        r.read_line(&mut header).map_err(|e| err(e.to_string()))?;
        let mut fields = header.split_whitespace();
        if fields.next() != Some("YUV4MPEG2") {
            return Err(err("not a YUV4MPEG2 file".into()));
        }
        let (mut w, mut h) = (0u32, 0u32);
        for f in fields {
            match f.split_at(1) {
                ("W", v) => w = v.parse().map_err(|_| err(format!("bad width {v}")))?,
                ("H", v) => h = v.parse().map_err(|_| err(format!("bad height {v}")))?,
                ("C", v) if !v.starts_with("420") => {
                    return Err(err(format!("colour space C{v}: only 4:2:0 is supported")));
                }
                _ => {}
            }
        }
        if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
            return Err(err(format!("unsupported size {w}x{h} (even sizes only)")));
        }
        let size = VideoFrame::byte_len(w, h);
        let mut frames = Vec::new();
        while frames.len() < MAX_FRAMES {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(|e| err(e.to_string()))? == 0 {
                break;
            }
            if !line.starts_with("FRAME") {
                return Err(err(format!("expected FRAME, found {:?}", line.trim())));
            }
            let mut data = vec![0u8; size];
            r.read_exact(&mut data).map_err(|e| err(format!("truncated frame: {e}")))?;
            frames.push(VideoFrame { width: w, height: h, data });
        }
        if frames.is_empty() {
            return Err(err("no frames".into()));
        }
        Ok(Self { frames, fps, next: 0 })
    }
}

impl VideoCapturer for Y4mReader {
    fn size(&self) -> (u32, u32) {
        (self.frames[0].width, self.frames[0].height)
    }
    fn fps(&self) -> u32 {
        self.fps
    }
    fn capture(&mut self) -> Option<VideoFrame> {
        let f = self.frames[self.next % self.frames.len()].clone();
        self.next += 1;
        Some(f)
    }
}

/// Loops over the frames of a VP8 IVF file.
pub struct IvfReader {
    frames: Vec<Vec<u8>>,
    fps: u32,
    next: usize,
}

impl IvfReader {
    pub fn open(path: &Path, fps: u32) -> Result<Self, MediaCliError> {
        let err = |m: String| MediaCliError::file(path, m);
        let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let frames = ivf_frames(&data).map_err(err)?;
        // A file that says VP8 but does not decode would publish a stream nobody can watch.
        VideoDecoder::new(VideoCodec::Vp8)
            .and_then(|mut d| d.decode(&frames[0]))
            .map_err(|e| err(format!("first frame does not decode: {e}")))?;
        Ok(Self { frames, fps, next: 0 })
    }
}

/// The frames of an IVF file whose codec is VP8.
fn ivf_frames(data: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    if data.len() < 32 || &data[..4] != b"DKIF" {
        return Err("not an IVF file".into());
    }
    if &data[8..12] != b"VP80" {
        return Err(format!("codec {:?}: only VP8 (VP80) is supported", String::from_utf8_lossy(&data[8..12])));
    }
    let mut pos = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut frames = Vec::new();
    while pos + 12 <= data.len() && frames.len() < MAX_FRAMES {
        let len = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        pos += 12;
        let frame = data.get(pos..pos.saturating_add(len)).ok_or("truncated frame")?;
        frames.push(frame.to_vec());
        pos += len;
    }
    if frames.is_empty() {
        return Err("no frames".into());
    }
    Ok(frames)
}

impl EncodedVideoSource for IvfReader {
    fn fps(&self) -> u32 {
        self.fps
    }
    fn next_frame(&mut self) -> Option<Vec<u8>> {
        let f = self.frames[self.next % self.frames.len()].clone();
        self.next += 1;
        Some(f)
    }
}

/// Writes decoded pictures as a Y4M file; the header takes the first picture's size.
pub struct Y4mWriter {
    path: PathBuf,
    out: BufWriter<File>,
    header_written: bool,
}

impl Y4mWriter {
    pub fn new(path: PathBuf, out: BufWriter<File>) -> Self {
        Self { path, out, header_written: false }
    }

    pub fn write(&mut self, f: &VideoFrame) -> Result<(), MediaCliError> {
        self.try_write(f).map_err(|e| MediaCliError::file(&self.path, e))
    }

    fn try_write(&mut self, f: &VideoFrame) -> std::io::Result<()> {
        if !self.header_written {
            writeln!(self.out, "YUV4MPEG2 W{} H{} F30:1 Ip A1:1 C420jpeg", f.width, f.height)?;
            self.header_written = true;
        }
        self.out.write_all(b"FRAME\n")?;
        self.out.write_all(&f.data)
    }

    pub fn finish(mut self) -> Result<(), MediaCliError> {
        self.out.flush().map_err(|e| MediaCliError::file(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ivf(codec: &[u8; 4], frames: &[&[u8]]) -> Vec<u8> {
        let mut d = b"DKIF".to_vec();
        d.extend_from_slice(&[0, 0, 32, 0]);
        d.extend_from_slice(codec);
        d.resize(32, 0);
        for f in frames {
            d.extend_from_slice(&(f.len() as u32).to_le_bytes());
            d.extend_from_slice(&[0; 8]);
            d.extend_from_slice(f);
        }
        d
    }

    #[test]
    fn ivf_frames_are_split_and_bad_files_refused() {
        assert_eq!(ivf_frames(&ivf(b"VP80", &[b"ab", b"cde"])).unwrap(), vec![b"ab".to_vec(), b"cde".to_vec()]);
        assert!(ivf_frames(&ivf(b"VP90", &[b"ab"])).unwrap_err().contains("only VP8"));
        assert!(ivf_frames(&ivf(b"VP80", &[])).is_err());
        assert!(ivf_frames(b"RIFF").is_err());
        let mut truncated = ivf(b"VP80", &[b"abcdef"]);
        truncated.truncate(truncated.len() - 2);
        assert_eq!(ivf_frames(&truncated).unwrap_err(), "truncated frame");
    }
}
