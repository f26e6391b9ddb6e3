//! Does this RTP packet start a key frame? Read from the codec's RTP payload descriptor and
//! the first bytes of the frame, which stay in clear under Umbra's end-to-end encryption
//! (docs/e2ee-protocol.md §5: VP8/VP9 frame headers, H.264 NAL headers, AV1 OBU and
//! aggregation headers). The overload rule resumes a track that lost a frame only here.
//!
//! Only the packet that *starts* the key frame answers true; the forwarder then lets the rest
//! of that frame (same RTP timestamp) through.

use str0m::format::Codec;

/// True when `payload` is the first packet of a key frame of `codec`. A video codec without a
/// rule here answers true for every packet: the router cannot tell, and holding the track
/// forever would be worse than a decoder asking for a key frame itself.
pub fn starts_keyframe(codec: Codec, payload: &[u8]) -> bool {
    match codec {
        Codec::Vp8 => vp8(payload),
        Codec::Vp9 => vp9(payload),
        Codec::H264 => h264(payload),
        Codec::Av1 => av1(payload),
        _ => true,
    }
}

/// RFC 7741 §4.2: descriptor, then (on the partition start of partition 0) the VP8 frame tag,
/// whose bit 0 is 0 on a key frame (RFC 6386 §9.1).
fn vp8(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let start_of_partition = b0 & 0x10 != 0;
    let partition_id = b0 & 0x07;
    if !start_of_partition || partition_id != 0 {
        return false;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(i) else { return false };
        i += 1;
        if x & 0x80 != 0 {
            // PictureID: 7 or 15 bits, the M bit says which.
            let Some(&pid) = p.get(i) else { return false };
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/Y/KEYIDX
        }
    }
    p.get(i).is_some_and(|tag| tag & 0x01 == 0)
}

/// RFC 9628 §4.2: the first byte is I|P|L|F|B|E|V|Z. A key frame is a picture not
/// inter-predicted (P = 0); its start is the packet with B = 1, of spatial layer 0 when layer
/// indices are present.
fn vp9(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let (picture_id, predicted, layers, begin) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x08 != 0);
    if predicted || !begin {
        return false;
    }
    if !layers {
        return true;
    }
    let mut i = 1;
    if picture_id {
        let Some(&pid) = p.get(i) else { return false };
        i += if pid & 0x80 != 0 { 2 } else { 1 };
    }
    p.get(i).is_some_and(|l| (l >> 1) & 0x07 == 0)
}

const H264_IDR: u8 = 5;
const H264_SPS: u8 = 7;
const H264_STAP_A: u8 = 24;
const H264_FU_A: u8 = 28;

/// RFC 6184 §5: a single NAL unit, a STAP-A of several, or an FU-A fragment. A key frame
/// starts with its SPS (browsers send SPS/PPS right before the IDR slice) or, without one,
/// the IDR slice's first fragment.
fn h264(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let key = |t: u8| t == H264_IDR || t == H264_SPS;
    match b0 & 0x1F {
        H264_STAP_A => {
            let mut i = 1;
            while i + 2 < p.len() {
                let len = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                if key(p[i + 2] & 0x1F) {
                    return true;
                }
                i += 2 + len;
            }
            false
        }
        H264_FU_A => p.get(1).is_some_and(|&h| h & 0x80 != 0 && key(h & 0x1F)),
        t => key(t),
    }
}

/// The AV1 RTP payload format (§4.4): the aggregation header's N bit marks the first packet
/// of a coded video sequence, which begins with a key frame.
fn av1(p: &[u8]) -> bool {
    p.first().is_some_and(|&b| b & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_and_delta_frames_with_and_without_extensions() {
        // S=1, PID=0, no extension; frame tag 0x10 (key) / 0x11 (delta).
        assert!(starts_keyframe(Codec::Vp8, &[0x10, 0x10, 0x02, 0x00]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x10, 0x11, 0x02, 0x00]));
        // X=1, I=1 with a 15-bit picture id, L=1, T=1: 5 descriptor bytes, then the tag.
        assert!(starts_keyframe(Codec::Vp8, &[0x90, 0xE0, 0x81, 0x23, 0x05, 0x40, 0x50]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x90, 0xE0, 0x81, 0x23, 0x05, 0x40, 0x51]));
        // Not the start of partition 0: a continuation of whatever frame.
        assert!(!starts_keyframe(Codec::Vp8, &[0x00, 0x10]));
        assert!(!starts_keyframe(Codec::Vp8, &[0x11, 0x10]));
        // Truncated.
        assert!(!starts_keyframe(Codec::Vp8, &[0x90, 0xE0, 0x81]));
        assert!(!starts_keyframe(Codec::Vp8, &[]));
    }

    #[test]
    fn vp9_begin_of_a_non_predicted_picture() {
        // I=1 (7-bit id), B=1, P=0.
        assert!(starts_keyframe(Codec::Vp9, &[0x88, 0x05, 0x00]));
        // P=1: inter-predicted.
        assert!(!starts_keyframe(Codec::Vp9, &[0xC8, 0x05, 0x00]));
        // B=0: not the first packet.
        assert!(!starts_keyframe(Codec::Vp9, &[0x80, 0x05]));
        // Layer indices: SID 0 starts the key picture, SID 1 does not.
        assert!(starts_keyframe(Codec::Vp9, &[0xA8, 0x05, 0x00, 0x00]));
        assert!(!starts_keyframe(Codec::Vp9, &[0xA8, 0x05, 0x02, 0x00]));
    }

    #[test]
    fn h264_sps_idr_in_every_packetization_mode() {
        assert!(starts_keyframe(Codec::H264, &[0x67, 0x42]));
        assert!(starts_keyframe(Codec::H264, &[0x65, 0x88]));
        assert!(!starts_keyframe(Codec::H264, &[0x41, 0x9A]));
        // STAP-A of SPS and PPS.
        assert!(starts_keyframe(Codec::H264, &[0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xCE]));
        // STAP-A of SEI and a non-IDR slice.
        assert!(!starts_keyframe(Codec::H264, &[0x78, 0x00, 0x02, 0x06, 0x05, 0x00, 0x02, 0x41, 0x9A]));
        // FU-A: start of an IDR, middle of an IDR, start of a non-IDR slice.
        assert!(starts_keyframe(Codec::H264, &[0x7C, 0x85, 0x88]));
        assert!(!starts_keyframe(Codec::H264, &[0x7C, 0x05, 0x88]));
        assert!(!starts_keyframe(Codec::H264, &[0x7C, 0x81, 0x9A]));
    }

    #[test]
    fn av1_new_coded_video_sequence() {
        assert!(starts_keyframe(Codec::Av1, &[0x18, 0x0A]));
        assert!(!starts_keyframe(Codec::Av1, &[0x10, 0x32]));
        assert!(!starts_keyframe(Codec::Av1, &[]));
    }
}
