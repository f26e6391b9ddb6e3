//! Codecs whose readable part is a prefix fixed by the frame's first byte: VP8, VP9, Opus
//! (and opaque, with an empty prefix).

use super::{Codec, malformed};
use crate::error::FrameError;

/// Length of the clear prefix of `frame`, derived from its first byte only, so that the
/// receiver computes the same length from the protected frame.
pub(crate) fn clear_len(codec: Codec, frame: &[u8]) -> Result<usize, FrameError> {
    let n = match codec {
        Codec::Opaque => 0,
        Codec::Opus => 1,
        Codec::Vp8 => vp8_clear_len(first(codec, frame)?),
        Codec::Vp9 => vp9_clear_len(first(codec, frame)?),
        Codec::H264 | Codec::Av1 => unreachable_codec(codec)?,
    };
    if frame.len() < n {
        return Err(malformed(codec, "frame shorter than its payload header"));
    }
    Ok(n)
}

fn first(codec: Codec, frame: &[u8]) -> Result<u8, FrameError> {
    frame.first().copied().ok_or(malformed(codec, "empty frame"))
}

fn unreachable_codec(codec: Codec) -> Result<usize, FrameError> {
    Err(malformed(codec, "not a prefix codec"))
}

/// VP8 (RFC 6386 §9.1): the 3-byte frame tag, whose bit 0 is 0 on key frames; key frames add
/// the 3-byte start code and the 4 bytes of width and height, which depacketizers and the
/// router read to learn the resolution.
fn vp8_clear_len(b0: u8) -> usize {
    if b0 & 0x01 == 0 { 10 } else { 3 }
}

/// VP9 uncompressed header, first byte: frame_marker(2) profile_low(1) profile_high(1)
/// [reserved_zero(1) if profile 3] show_existing_frame(1) then either frame_to_show_map_idx(3)
/// or frame_type(1). A shown-existing frame is only that header (1 or 2 bytes); a key frame
/// keeps the same 10 bytes as VP8 (sync code and colour config); others keep 3.
fn vp9_clear_len(b0: u8) -> usize {
    let profile = ((b0 >> 5) & 1) | (((b0 >> 4) & 1) << 1);
    let mut bit = 3; // index, counting from the most significant bit as 7
    if profile == 3 {
        bit -= 1; // reserved_zero
    }
    let show_existing = (b0 >> bit) & 1 == 1;
    if show_existing {
        // 2 + 2 (+1) + 1 + 3 bits
        return if profile == 3 { 2 } else { 1 };
    }
    let frame_type_key = (b0 >> (bit - 1)) & 1 == 0;
    if frame_type_key { 10 } else { 3 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta() {
        assert_eq!(vp8_clear_len(0x50), 10);
        assert_eq!(vp8_clear_len(0x51), 3);
    }

    #[test]
    fn vp9_header_bits() {
        // 10 0 0 0 0 1 0: profile 0, not show-existing, key frame.
        assert_eq!(vp9_clear_len(0b1000_0010), 10);
        // frame_type = 1: inter frame.
        assert_eq!(vp9_clear_len(0b1000_0110), 3);
        // show_existing_frame = 1, profile 0.
        assert_eq!(vp9_clear_len(0b1000_1001), 1);
        // profile 3 (low=1, high=1), reserved 0, show_existing 1.
        assert_eq!(vp9_clear_len(0b1011_0100), 2);
        // profile 3, key frame: reserved 0, show_existing 0, frame_type 0.
        assert_eq!(vp9_clear_len(0b1011_0000), 10);
    }

    #[test]
    fn short_frames_are_malformed() {
        assert!(clear_len(Codec::Vp8, &[0x50, 0, 0]).is_err());
        assert!(clear_len(Codec::Vp8, &[]).is_err());
        assert_eq!(clear_len(Codec::Opaque, &[]).unwrap(), 0);
    }
}
