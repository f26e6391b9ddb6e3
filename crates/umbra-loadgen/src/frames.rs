//! The synthetic media: VP8-shaped video frames (a valid VP8 frame tag; key frames carry the
//! start code and dimensions) and Opus-shaped audio frames, each carrying a stamp (magic,
//! kind, sequence number, send time) that lets every subscriber measure latency and loss.

use std::sync::OnceLock;
use std::time::Instant;

/// Marks a stamped frame.
pub const MAGIC: [u8; 4] = *b"ULG1";
/// Magic, kind, sequence number (u32 LE), send time in µs since [`epoch`] (u64 LE).
pub const STAMP_LEN: usize = 4 + 1 + 4 + 8;

pub const KIND_VIDEO: u8 = 1;
pub const KIND_AUDIO: u8 = 2;

/// Bytes before the stamp: a VP8 key frame's uncompressed header (frame tag, start code,
/// width, height), a delta frame's frame tag, an Opus TOC byte.
const VP8_KEY_HEADER: usize = 10;
const VP8_DELTA_HEADER: usize = 3;
const OPUS_TOC: usize = 1;

/// The process's clock origin: publisher and subscribers live in one process, so send and
/// receive times are on the same clock.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

pub fn now_us() -> u64 {
    epoch().elapsed().as_micros() as u64
}

fn stamp(out: &mut Vec<u8>, kind: u8, seq: u32, sent_us: u64) {
    out.extend_from_slice(&MAGIC);
    out.push(kind);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&sent_us.to_le_bytes());
}

fn fill(out: &mut Vec<u8>, len: usize, seq: u32) {
    // Not zeros (nothing on the path compresses, but keep it honest) and cheap.
    let mut x = seq.wrapping_mul(2_654_435_761) | 1;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.push(x as u8);
    }
}

/// A VP8 frame of `len` bytes (at least the header and the stamp).
///
/// Frame tag (RFC 6386 §9.1): bit 0 frame type (0 = key frame), bits 1–3 version (0),
/// bit 4 show_frame (1), bits 5–23 the first partition's size. A key frame follows it with the
/// start code 9d 01 2a and 14-bit width and height (scale 0).
pub fn video_frame(seq: u32, key: bool, len: usize, sent_us: u64, width: u16, height: u16) -> Vec<u8> {
    let header = if key { VP8_KEY_HEADER } else { VP8_DELTA_HEADER };
    let len = len.max(header + STAMP_LEN);
    let first_part = ((len - header) as u32).min(2000);
    let tag = u32::from(!key) | (1 << 4) | (first_part << 5);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&tag.to_le_bytes()[..3]);
    if key {
        out.extend_from_slice(&[0x9d, 0x01, 0x2a]);
        out.extend_from_slice(&(width & 0x3fff).to_le_bytes());
        out.extend_from_slice(&(height & 0x3fff).to_le_bytes());
    }
    stamp(&mut out, KIND_VIDEO, seq, sent_us);
    fill(&mut out, len, seq);
    out
}

/// Whether a VP8 frame is a key frame (frame tag bit 0 clear, start code present).
pub fn is_vp8_key_frame(frame: &[u8]) -> bool {
    frame.len() >= VP8_KEY_HEADER && frame[0] & 1 == 0 && frame[3..6] == [0x9d, 0x01, 0x2a]
}

/// An Opus-shaped frame of `len` bytes: a TOC byte (CELT fullband 20 ms, one frame) and the stamp.
pub fn audio_frame(seq: u32, len: usize, sent_us: u64) -> Vec<u8> {
    let len = len.max(OPUS_TOC + STAMP_LEN);
    let mut out = Vec::with_capacity(len);
    out.push(0xfc);
    stamp(&mut out, KIND_AUDIO, seq, sent_us);
    fill(&mut out, len, seq);
    out
}

/// The stamp of a received frame: (kind, sequence number, send time in µs).
pub fn parse_stamp(frame: &[u8]) -> Option<(u8, u32, u64)> {
    // Audio first (TOC byte), then VP8 delta and key frame headers.
    for off in [OPUS_TOC, VP8_DELTA_HEADER, VP8_KEY_HEADER] {
        let Some(s) = frame.get(off..off + STAMP_LEN) else { continue };
        if s[..4] == MAGIC {
            let kind = s[4];
            let seq = u32::from_le_bytes(s[5..9].try_into().ok()?);
            let ts = u64::from_le_bytes(s[9..17].try_into().ok()?);
            return Some((kind, seq, ts));
        }
    }
    None
}

/// A set of received sequence numbers (they start at 0 and grow by one per frame).
#[derive(Default, Clone)]
pub struct SeqSet {
    words: Vec<u64>,
}

impl SeqSet {
    pub fn insert(&mut self, seq: u32) {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        // Bounded: 10 minutes of 50 fps audio is 30 000 frames, 470 words.
        if w >= 1 << 20 {
            return;
        }
        if w >= self.words.len() {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << b;
    }

    pub fn contains(&self, seq: u32) -> bool {
        let (w, b) = ((seq / 64) as usize, seq % 64);
        self.words.get(w).is_some_and(|x| x & (1 << b) != 0)
    }

    /// How many of `range` were received.
    pub fn count(&self, range: std::ops::Range<u32>) -> u64 {
        range.filter(|s| self.contains(*s)).count() as u64
    }
}

/// The `q`-quantile (0..=1) of samples, sorted in place.
pub fn quantile(samples: &mut [u32], q: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    Some(samples[i.min(samples.len() - 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_frames_carry_a_vp8_tag_and_the_stamp() {
        let k = video_frame(7, true, 4000, 123_456, 1280, 720);
        assert_eq!(k.len(), 4000);
        assert!(is_vp8_key_frame(&k));
        assert_eq!(u16::from_le_bytes([k[6], k[7]]), 1280);
        assert_eq!(u16::from_le_bytes([k[8], k[9]]), 720);
        // show_frame set, version 0, first partition size inside the frame
        assert_eq!(k[0] & 0x1e, 0x10);
        let size = (u32::from(k[0]) >> 5) | (u32::from(k[1]) << 3) | (u32::from(k[2]) << 11);
        assert!(size > 0 && size as usize <= k.len() - 10);
        assert_eq!(parse_stamp(&k), Some((KIND_VIDEO, 7, 123_456)));

        let d = video_frame(8, false, 900, 99, 1280, 720);
        assert_eq!(d.len(), 900);
        assert!(!is_vp8_key_frame(&d));
        assert_eq!(d[0] & 1, 1);
        assert_eq!(parse_stamp(&d), Some((KIND_VIDEO, 8, 99)));
    }

    #[test]
    fn audio_frames_carry_the_stamp() {
        let a = audio_frame(3, 100, 5);
        assert_eq!(a.len(), 100);
        assert_eq!(parse_stamp(&a), Some((KIND_AUDIO, 3, 5)));
        assert_eq!(parse_stamp(&a[..10]), None);
        assert_eq!(parse_stamp(b"not a stamped frame at all"), None);
    }

    #[test]
    fn seq_set_counts_what_arrived() {
        let mut s = SeqSet::default();
        for q in (0..200).filter(|q| q % 10 != 3) {
            s.insert(q);
        }
        assert_eq!(s.count(0..200), 180);
        assert_eq!(s.count(100..110), 9);
        assert_eq!(s.count(500..600), 0);
        assert!(!s.contains(13) && s.contains(14));
    }

    #[test]
    fn quantiles() {
        let mut v: Vec<u32> = (1..=100).rev().collect();
        assert_eq!(quantile(&mut v, 0.5), Some(51));
        assert_eq!(quantile(&mut v, 0.99), Some(99));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
