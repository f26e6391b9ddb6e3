//! H.264 Annex B framing.
//!
//! Browsers' H.264 packetizers split the frame at start codes and read each NAL unit's header;
//! their depacketizers parse SPS/PPS and the start of each slice header (`first_mb_in_slice`,
//! `slice_type`, `pic_parameter_set_id`) to find frame starts and check that a key frame's
//! parameter sets arrived. So: start codes and parameter-set NAL units stay as they are (clear,
//! not authenticated: receivers rewrite SPS VUI and may insert parameter sets); every other NAL
//! unit keeps its header (and, for slices, those three fields) readable and authenticated, and
//! its remainder is encrypted. The encrypted region of each unit is escaped with H.264
//! emulation prevention so that it never contains a start code, and ends with the byte 0x80 so
//! that no unit ends in 0x00 (which Annex B parsers would take for a trailing zero byte).

use std::borrow::Cow;

use super::{Codec, Form, Part, malformed};
use crate::error::FrameError;

const TERMINATOR: u8 = 0x80;

fn bad(reason: &'static str) -> FrameError {
    malformed(Codec::H264, reason)
}

/// NAL unit types that stay entirely clear: SPS, PPS, access unit delimiter, end of sequence,
/// end of stream, filler data, SPS extension, subset SPS.
fn is_clear_type(t: u8) -> bool {
    matches!(t, 7 | 8 | 9 | 10 | 11 | 12 | 13 | 15)
}

pub(crate) fn split(frame: &[u8], form: Form) -> Result<Vec<Part<'_>>, FrameError> {
    let mut parts = Vec::new();
    let mut pos = match next_start_code(frame, 0) {
        Some((0, end)) => {
            parts.push(Part::Clear(&frame[..end]));
            end
        }
        Some(_) | None => return Err(bad("frame does not start with a start code")),
    };
    while pos < frame.len() {
        let (nal_end, next) = match next_start_code(frame, pos) {
            Some((sc, end)) => (sc, Some(end)),
            None => (frame.len(), None),
        };
        // Zero bytes before a start code belong to it (zero_byte / trailing_zero_8bits).
        let mut end = nal_end;
        while end > pos && frame[end - 1] == 0 {
            end -= 1;
        }
        let nal = &frame[pos..end];
        if !nal.is_empty() {
            parts.push(nal_part(nal, form)?);
        }
        let sep_end = next.unwrap_or(frame.len());
        if end < sep_end {
            parts.push(Part::Clear(&frame[end..sep_end]));
        }
        pos = sep_end;
    }
    Ok(parts)
}

/// Finds the next `00 00 01` at or after `from`; returns its start and the index after it.
fn next_start_code(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= buf.len() {
        match buf[i + 2] {
            1 if buf[i] == 0 && buf[i + 1] == 0 => return Some((leading_zero_start(buf, from, i), i + 3)),
            0 => i += 1,
            _ => i += 3,
        }
    }
    None
}

/// A start code found at `i` may be preceded by more zeros (a 4-byte start code); at the very
/// beginning of the frame they are part of the first separator.
fn leading_zero_start(buf: &[u8], from: usize, i: usize) -> usize {
    let mut s = i;
    while s > from && buf[s - 1] == 0 {
        s -= 1;
    }
    if from == 0 { s } else { i }
}

fn nal_part(nal: &[u8], form: Form) -> Result<Part<'_>, FrameError> {
    let nal_type = nal[0] & 0x1f;
    if is_clear_type(nal_type) {
        return Ok(Part::Clear(nal));
    }
    let head_len = match nal_type {
        1 | 5 => 1 + slice_header_prefix_len(&nal[1..])?,
        // Prefix NAL, coded slice extension, 3D-AVC slice: 3 more header bytes.
        14 | 20 | 21 => 4,
        _ => 1,
    };
    if nal.len() < head_len {
        return Err(bad("NAL unit shorter than its header"));
    }
    let (head, rest) = nal.split_at(head_len);
    let body = match form {
        Form::Plain => Cow::Borrowed(rest),
        Form::Wire => Cow::Owned(unescape(rest, trailing_zeros(head))?),
    };
    Ok(Part::Unit { head, body })
}

/// Number of raw bytes (emulation-prevention bytes included) that hold `first_mb_in_slice`,
/// `slice_type` and `pic_parameter_set_id`, the three leading ue(v) fields of a slice header.
fn slice_header_prefix_len(payload: &[u8]) -> Result<usize, FrameError> {
    let mut r = BitReader::new(payload);
    let _first_mb = r.ue()?;
    let slice_type = r.ue()?;
    let pps_id = r.ue()?;
    if slice_type > 9 || pps_id > 255 {
        return Err(bad("slice header out of range"));
    }
    Ok(r.bytes_touched())
}

/// Reads bits from a NAL payload, skipping emulation-prevention bytes.
struct BitReader<'a> {
    buf: &'a [u8],
    byte: usize,
    bit: u8,
    zeros: u8,
    current: u8,
    touched: usize,
}

impl<'a> BitReader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { buf, byte: 0, bit: 8, zeros: 0, current: 0, touched: 0 }
    }

    fn bit(&mut self) -> Result<u32, FrameError> {
        if self.bit == 8 {
            loop {
                let b = *self.buf.get(self.byte).ok_or(bad("slice header truncated"))?;
                self.byte += 1;
                if self.zeros >= 2 && b == 3 {
                    self.zeros = 0;
                    continue;
                }
                self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
                self.current = b;
                break;
            }
            self.bit = 0;
            self.touched = self.byte;
        }
        let v = (self.current >> (7 - self.bit)) & 1;
        self.bit += 1;
        Ok(v as u32)
    }

    /// Exp-Golomb ue(v); values above 2^31 are rejected as malformed.
    fn ue(&mut self) -> Result<u32, FrameError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(bad("Exp-Golomb code too long"));
            }
        }
        let mut v: u64 = 1;
        for _ in 0..zeros {
            v = (v << 1) | self.bit()? as u64;
        }
        u32::try_from(v - 1).map_err(|_| bad("Exp-Golomb value too large"))
    }

    fn bytes_touched(&self) -> usize {
        self.touched
    }
}

fn trailing_zeros(head: &[u8]) -> u8 {
    head.iter().rev().take(2).take_while(|b| **b == 0).count() as u8
}

/// Appends an escaped region: after two zero bytes (counting those that end the head), a byte
/// of 0..=3 gets an emulation-prevention byte 0x03 before it. Then the terminator.
fn escape_into(pieces: &[&[u8]], mut zeros: u8, out: &mut Vec<u8>) {
    for piece in pieces {
        for &b in *piece {
            if zeros >= 2 && b <= 3 {
                out.push(3);
                zeros = 0;
            }
            out.push(b);
            zeros = if b == 0 { zeros + 1 } else { 0 };
        }
    }
    out.push(TERMINATOR);
}

/// Inverse of [`escape_into`]; rejects anything `escape_into` cannot have produced.
fn unescape(region: &[u8], mut zeros: u8) -> Result<Vec<u8>, FrameError> {
    let Some((&TERMINATOR, body)) = region.split_last() else {
        return Err(bad("protected NAL unit lacks its 0x80 terminator"));
    };
    let mut out = Vec::with_capacity(body.len());
    for &b in body {
        if zeros >= 2 {
            match b {
                3 => {
                    zeros = 0;
                    continue;
                }
                0..=2 => return Err(bad("start code emulation inside protected region")),
                _ => {}
            }
        }
        out.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    Ok(out)
}

/// AAD entry: `BE16(len(head)) || head || BE32(len(body))`.
pub(crate) fn describe(head: &[u8], body_len: usize, out: &mut Vec<u8>) {
    out.extend_from_slice(&(head.len() as u16).to_be_bytes());
    out.extend_from_slice(head);
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
}

pub(crate) fn write_unit(head: &[u8], pieces: &[&[u8]], form: Form, out: &mut Vec<u8>) {
    out.extend_from_slice(head);
    match form {
        Form::Wire => escape_into(pieces, trailing_zeros(head), out),
        Form::Plain => pieces.iter().for_each(|p| out.extend_from_slice(p)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(data: &[u8], zeros: u8) {
        let mut out = Vec::new();
        escape_into(&[data], zeros, &mut out);
        for w in out.windows(3) {
            assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "start code emulation in {out:02x?}");
        }
        assert_eq!(unescape(&out, zeros).unwrap(), data);
    }

    #[test]
    fn escaping_round_trips_and_removes_start_codes() {
        roundtrip(&[], 0);
        roundtrip(&[0, 0, 0, 0, 1, 0, 0, 2, 0, 0, 3, 0, 0], 0);
        roundtrip(&[0, 1, 2], 2);
        roundtrip(&[0, 0], 1);
        roundtrip(&[3, 3, 0, 0, 3, 0, 0, 0, 3], 2);
    }

    #[test]
    fn slice_header_fields() {
        // first_mb 0 ('1'), slice_type 7 ('0001000'), pps 0 ('1') = 1000_1000 1...
        assert_eq!(slice_header_prefix_len(&[0x88, 0x80, 0xff]).unwrap(), 2);
        // first_mb 0, slice_type 0 ('1'), pps 0 ('1'): all in the first byte.
        assert_eq!(slice_header_prefix_len(&[0xe0, 0x11]).unwrap(), 1);
        assert!(slice_header_prefix_len(&[0x00, 0x00]).is_err());
        assert!(slice_header_prefix_len(&[]).is_err());
    }

    #[test]
    fn splits_at_start_codes_and_keeps_separators() {
        let frame = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 0xb8, 0x10, 0x20];
        let parts = split(&frame, Form::Plain).unwrap();
        let mut rebuilt = Vec::new();
        let mut units = 0;
        for p in &parts {
            match p {
                Part::Clear(c) => rebuilt.extend_from_slice(c),
                Part::Unit { head, body } => {
                    units += 1;
                    assert_eq!(head, &[0x65, 0xb8]);
                    rebuilt.extend_from_slice(head);
                    rebuilt.extend_from_slice(body);
                }
            }
        }
        assert_eq!(units, 1);
        assert_eq!(rebuilt, frame);
        assert!(split(&[0x65, 1, 2], Form::Plain).is_err());
    }
}
