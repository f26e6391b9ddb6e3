//! Whether an encoded (decrypted) frame starts a picture that decodes without earlier ones,
//! read from the bitstream itself: RTP-level hints are not available for every codec once a
//! frame is end-to-end encrypted, and a recorder must know where a file may start.

use super::VideoCodec;

/// True when `frame` is a key frame (VP8, VP9) or holds an IDR picture (H.264, Annex B).
pub fn is_key_frame(codec: VideoCodec, frame: &[u8]) -> bool {
    match codec {
        // RFC 6386 §9.1: bit 0 of the frame tag is 0 for key frames.
        VideoCodec::Vp8 => frame.first().is_some_and(|b| b & 1 == 0),
        VideoCodec::Vp9 => vp9_key_frame(frame),
        VideoCodec::H264 => h264_nal_types(frame).any(|t| t == 5),
    }
}

/// VP9 uncompressed header (VP9 bitstream spec §6.2): frame_marker (2 bits), profile (2 bits,
/// plus a reserved zero bit for profile 3), show_existing_frame, frame_type (0 = key frame).
/// In a superframe the first frame comes first, so reading from byte 0 answers for it.
fn vp9_key_frame(frame: &[u8]) -> bool {
    let Some(&b) = frame.first() else {
        return false;
    };
    if b >> 6 != 0b10 {
        return false;
    }
    let profile = ((b >> 5) & 1) | (((b >> 4) & 1) << 1);
    let mut bit = 4; // next bit, counted from the most significant (bit 7 = index 0)
    if profile == 3 {
        bit += 1;
    }
    let read = |i: usize| frame.get(i / 8).map(|byte| (byte >> (7 - i % 8)) & 1);
    match read(bit) {
        Some(0) => read(bit + 1) == Some(0),
        _ => false, // show_existing_frame: a repeat, not a key frame
    }
}

/// The `nal_unit_type` of every NAL unit of an Annex B stream.
fn h264_nal_types(frame: &[u8]) -> impl Iterator<Item = u8> + '_ {
    frame.windows(4).filter_map(|w| (w[0] == 0 && w[1] == 0 && w[2] == 1).then_some(w[3] & 0x1f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_tag() {
        assert!(is_key_frame(VideoCodec::Vp8, &[0x50, 0x2d, 0x01, 0x9d, 0x01, 0x2a]));
        assert!(!is_key_frame(VideoCodec::Vp8, &[0x51, 0x2d, 0x01]));
        assert!(!is_key_frame(VideoCodec::Vp8, &[]));
    }

    #[test]
    fn vp9_header() {
        // frame_marker 10, profile 0, show_existing 0, frame_type 0 (key).
        assert!(is_key_frame(VideoCodec::Vp9, &[0b1000_0010, 0x49, 0x83, 0x42]));
        // frame_type 1 (inter).
        assert!(!is_key_frame(VideoCodec::Vp9, &[0b1000_0110, 0x00]));
        // show_existing_frame.
        assert!(!is_key_frame(VideoCodec::Vp9, &[0b1000_1000]));
        // Not a VP9 frame marker.
        assert!(!is_key_frame(VideoCodec::Vp9, &[0b0000_0010]));
    }

    #[test]
    fn h264_idr() {
        let idr = [0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 1, 0x65, 0x88];
        assert!(is_key_frame(VideoCodec::H264, &idr));
        let p = [0, 0, 0, 1, 0x41, 0x9a, 0x00];
        assert!(!is_key_frame(VideoCodec::H264, &p));
    }
}
