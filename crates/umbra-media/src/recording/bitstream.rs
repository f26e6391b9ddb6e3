//! What the recorder reads from clear encoded frames before it opens a file: the picture size a
//! container's track header wants, and the Opus channel count. Only headers are read, and every
//! read is bounds-checked: a frame too short or not a key frame gives `None`, never a panic.

/// Width and height from a VP8 key frame (RFC 6386 §9.1: 3-byte frame tag, start code
/// `9d 01 2a`, then 14-bit little-endian width and height with 2 scaling bits each).
pub fn vp8_dimensions(frame: &[u8]) -> Option<(u32, u32)> {
    let tag = *frame.first()?;
    if tag & 1 != 0 || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
    let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
    (w > 0 && h > 0).then_some((w as u32, h as u32))
}

/// MSB-first bit reader over a byte slice.
struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b as u32)
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
}

/// Width and height from a VP9 key frame's uncompressed header (VP9 bitstream spec §6.2:
/// frame marker, profile, show_existing_frame, frame_type, show_frame, error_resilient_mode,
/// sync code `49 83 42`, color_config, then 16-bit width−1 and height−1). In a superframe the
/// first frame comes first, so reading from the start is enough.
pub fn vp9_dimensions(frame: &[u8]) -> Option<(u32, u32)> {
    let mut r = Bits { data: frame, pos: 0 };
    if r.bits(2)? != 2 {
        return None;
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?; // reserved_zero
    }
    if r.bit()? == 1 {
        return None; // show_existing_frame: no header follows
    }
    if r.bit()? != 0 {
        return None; // not a key frame
    }
    r.bit()?; // show_frame
    r.bit()?; // error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?; // reserved_zero
    }
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Some((w, h))
}

/// Channels an Opus packet codes (RFC 6716 §3.1: the TOC byte's `s` bit), for the container's
/// header. WebRTC negotiates `opus/48000/2` whatever the publisher sends, so the packet is the
/// truth.
pub fn opus_channels(packet: &[u8]) -> Option<u8> {
    packet.first().map(|toc| if toc & 0x04 != 0 { 2 } else { 1 })
}

/// The `OpusHead` identification header (RFC 7845 §5.1) that Matroska and MP4 carry as the
/// track's codec private data. Pre-skip is 0: WebRTC packets start at the first real sample.
pub fn opus_head(channels: u8) -> [u8; 19] {
    let mut h = [0u8; 19];
    h[..8].copy_from_slice(b"OpusHead");
    h[8] = 1;
    h[9] = channels;
    h[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_key_frame_size_is_read_and_delta_frames_give_none() {
        // Frame tag with the key-frame bit clear, start code, 640 x 360 with scaling bits set.
        let key = [0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x42, 0x68, 0x41, 0x00];
        assert_eq!(vp8_dimensions(&key), Some((640, 360)));
        let mut delta = key;
        delta[0] |= 1;
        assert_eq!(vp8_dimensions(&delta), None);
        for n in 0..key.len() - 1 {
            assert_eq!(vp8_dimensions(&key[..n]), None, "truncated at {n}");
        }
    }

    #[test]
    fn vp9_profile_0_key_frame_size_is_read() {
        // 10 0 0 0 0 0 0 | sync | cs=1 (BT.601) range=0 | w-1=1279 | h-1=719, packed by hand.
        let mut bits = String::from("10000000");
        bits += "010010011000001101000010"; // 0x49 0x83 0x42
        bits += "0010";
        bits += &format!("{:016b}{:016b}", 1279, 719);
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        let bytes: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect();
        assert_eq!(vp9_dimensions(&bytes), Some((1280, 720)));
        for n in 0..bytes.len() - 1 {
            assert_eq!(vp9_dimensions(&bytes[..n]), None, "truncated at {n}");
        }
        let mut inter = bytes.clone();
        inter[0] |= 0b0000_0100; // frame_type = 1
        assert_eq!(vp9_dimensions(&inter), None);
    }

    #[test]
    fn opus_head_and_channels() {
        assert_eq!(opus_channels(&[0x78]), Some(1));
        assert_eq!(opus_channels(&[0x7c]), Some(2));
        assert_eq!(opus_channels(&[]), None);
        let h = opus_head(2);
        assert_eq!(&h[..8], b"OpusHead");
        assert_eq!((h[8], h[9]), (1, 2));
        assert_eq!(u32::from_le_bytes([h[12], h[13], h[14], h[15]]), 48_000);
    }
}
