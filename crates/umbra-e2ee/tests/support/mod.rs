//! Shared by the integration tests: real-encoder fixtures and small, independent bitstream
//! readers used to check what packetizers would see.
#![allow(dead_code)]

pub mod signal_vectors;
pub mod vectors;

use std::path::PathBuf;

use umbra_e2ee::Codec;

pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata")
}

/// Frames recorded from real encoders by `testdata/frames/make.sh`.
pub fn fixture(name: &str) -> Vec<Vec<u8>> {
    let path = testdata().join("frames").join(format!("{name}.frames"));
    let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push(data[pos + 4..pos + 4 + len].to_vec());
        pos += 4 + len;
    }
    frames
}

pub const FIXTURES: [(&str, Codec); 6] = [
    ("vp8", Codec::Vp8),
    ("vp9", Codec::Vp9),
    ("h264", Codec::H264),
    ("h264-slices", Codec::H264),
    ("av1", Codec::Av1),
    ("opus", Codec::Opus),
];

/// NAL units of an Annex B stream, split the way a packetizer does (at every 00 00 01,
/// trailing zero bytes dropped).
pub fn nal_units(frame: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= frame.len() {
        if frame[i] == 0 && frame[i + 1] == 0 && frame[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let mut e = if k + 1 < starts.len() { starts[k + 1] - 3 } else { frame.len() };
        while e > s && frame[e - 1] == 0 {
            e -= 1;
        }
        nals.push(&frame[s..e]);
    }
    nals
}

/// `(first_mb_in_slice, slice_type, pic_parameter_set_id)` of a slice NAL unit, read after
/// removing emulation prevention, as a depacketizer does.
pub fn slice_header(nal: &[u8]) -> Option<(u32, u32, u32)> {
    let mut rbsp = Vec::new();
    let mut zeros = 0;
    for &b in &nal[1..nal.len().min(32)] {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        rbsp.push(b);
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    let mut bit = 0usize;
    let mut read = || -> Option<u32> {
        let v = (rbsp.get(bit / 8)? >> (7 - bit % 8)) & 1;
        bit += 1;
        Some(v as u32)
    };
    let mut ue = || -> Option<u32> {
        let mut z = 0;
        while read()? == 0 {
            z += 1;
        }
        let mut v = 1u32;
        for _ in 0..z {
            v = (v << 1) | read()?;
        }
        Some(v - 1)
    };
    Some((ue()?, ue()?, ue()?))
}

/// `(header byte, extension byte, payload)` of each OBU.
pub fn obus(frame: &[u8]) -> Vec<(u8, Option<u8>, &[u8])> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < frame.len() {
        let h = frame[pos];
        pos += 1;
        let ext = if h & 4 != 0 {
            pos += 1;
            Some(frame[pos - 1])
        } else {
            None
        };
        let size = if h & 2 != 0 {
            let mut v = 0usize;
            let mut shift = 0;
            loop {
                let b = frame[pos];
                pos += 1;
                v |= ((b & 0x7f) as usize) << shift;
                shift += 7;
                if b & 0x80 == 0 {
                    break;
                }
            }
            v
        } else {
            frame.len() - pos
        };
        out.push((h, ext, &frame[pos..pos + size]));
        pos += size;
    }
    out
}

/// Writes OBUs back with the `obu_size` field on every OBU in its shortest leb128 form, as an
/// RTP depacketizer rebuilds them. `keep` chooses which OBUs to write.
pub fn write_obus(obus: &[(u8, Option<u8>, &[u8])], keep: impl Fn(u8) -> bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (h, ext, payload) in obus.iter().filter(|o| keep((o.0 >> 3) & 0xf)) {
        out.push(h | 0x02);
        out.extend(ext);
        let mut n = payload.len();
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            out.push(if n > 0 { byte | 0x80 } else { byte });
            if n == 0 {
                break;
            }
        }
        out.extend_from_slice(payload);
    }
    out
}

pub fn is_vp8_key(frame: &[u8]) -> bool {
    frame[0] & 1 == 0
}
