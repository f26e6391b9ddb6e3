//! AV1 framing over the OBU sequence (low-overhead bitstream format, AV1 spec §5.3).
//!
//! RTP packetizers (RFC-track "RTP Payload Format for AV1") walk the OBUs, drop temporal
//! delimiters and tile lists, strip and re-add `obu_size`, and read sequence headers to mark
//! key frames. So every OBU header stays readable; sequence headers, temporal delimiters, tile
//! lists and padding stay entirely clear and unauthenticated (they may be dropped or rebuilt in
//! transit); every other OBU's payload is protected. Its header byte is authenticated with the
//! `obu_has_size_field` bit masked, since depacketizers set it on every OBU they rebuild.

use std::borrow::Cow;

use super::{Codec, Part, malformed};
use crate::error::FrameError;

const HAS_SIZE: u8 = 0x02;
const HAS_EXTENSION: u8 = 0x04;

fn bad(reason: &'static str) -> FrameError {
    malformed(Codec::Av1, reason)
}

/// Sequence header, temporal delimiter, tile list, padding.
fn is_clear_type(t: u8) -> bool {
    matches!(t, 1 | 2 | 8 | 15)
}

pub(crate) fn split(frame: &[u8]) -> Result<Vec<Part<'_>>, FrameError> {
    let mut parts = Vec::new();
    let mut pos = 0;
    if frame.is_empty() {
        return Err(bad("empty frame"));
    }
    while pos < frame.len() {
        let h = frame[pos];
        if h & 0x80 != 0 {
            return Err(bad("OBU forbidden bit set"));
        }
        let obu_type = (h >> 3) & 0x0f;
        let head_len = if h & HAS_EXTENSION != 0 { 2 } else { 1 };
        let head = frame.get(pos..pos + head_len).ok_or(bad("OBU header truncated"))?;
        let mut p = pos + head_len;
        let size = if h & HAS_SIZE != 0 {
            let (size, n) = read_leb128(&frame[p..])?;
            p += n;
            size
        } else {
            frame.len() - p
        };
        let end = p.checked_add(size).filter(|e| *e <= frame.len()).ok_or(bad("OBU size exceeds frame"))?;
        if is_clear_type(obu_type) {
            parts.push(Part::Clear(&frame[pos..end]));
        } else {
            parts.push(Part::Unit { head, body: Cow::Borrowed(&frame[p..end]) });
        }
        pos = end;
    }
    Ok(parts)
}

/// leb128 as AV1 uses it: at most 8 bytes, value below 2^32.
fn read_leb128(buf: &[u8]) -> Result<(usize, usize), FrameError> {
    let mut value: u64 = 0;
    for i in 0..8 {
        let b = *buf.get(i).ok_or(bad("obu_size truncated"))?;
        value |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            let v = u32::try_from(value).map_err(|_| bad("obu_size too large"))?;
            return Ok((v as usize, i + 1));
        }
    }
    Err(bad("obu_size longer than 8 bytes"))
}

fn write_leb128(mut v: usize, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// AAD entry: the OBU header (size bit masked), the extension byte if any, `BE32(len(body))`.
pub(crate) fn describe(head: &[u8], body_len: usize, out: &mut Vec<u8>) {
    out.push(head[0] & !HAS_SIZE);
    out.extend_from_slice(&head[1..]);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
}

/// Writes the OBU with a minimal `obu_size` when its header says it has one.
pub(crate) fn write_unit(head: &[u8], pieces: &[&[u8]], out: &mut Vec<u8>) {
    out.extend_from_slice(head);
    if head[0] & HAS_SIZE != 0 {
        write_leb128(pieces.iter().map(|p| p.len()).sum(), out);
    }
    for p in pieces {
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_round_trip() {
        for v in [0usize, 1, 127, 128, 300, 16_383, 16_384, 1 << 28, u32::MAX as usize] {
            let mut out = Vec::new();
            write_leb128(v, &mut out);
            assert_eq!(read_leb128(&out).unwrap(), (v, out.len()));
        }
        assert!(read_leb128(&[0x80; 8]).is_err());
        assert!(read_leb128(&[0x80]).is_err());
    }

    #[test]
    fn splits_obus() {
        // temporal delimiter (type 2, size 0), frame OBU (type 6) with 3 payload bytes.
        let frame = [0x12, 0x00, 0x32, 0x03, 0xaa, 0xbb, 0xcc];
        let parts = split(&frame).unwrap();
        assert!(matches!(parts[0], Part::Clear(c) if c == [0x12, 0x00]));
        assert!(
            matches!(&parts[1], Part::Unit { head, body } if *head == [0x32] && body.as_ref() == [0xaa, 0xbb, 0xcc])
        );
        assert!(split(&[0x32, 0x05, 0xaa]).is_err());
        assert!(split(&[0x92]).is_err());
    }
}
