//! Codec-aware framing on frames from real encoders (libvpx VP8/VP9, x264, libaom, libopus;
//! see testdata/frames/make.sh): every frame round-trips exactly, and the protected frame
//! still shows packetizers, depacketizers and the router what they read.

mod support;

use std::time::Instant;

use support::{FIXTURES, fixture, is_vp8_key, nal_units, obus, slice_header, write_obus};
use umbra_e2ee::{BaseKey, CipherSuite, Codec, EncryptionSecret, FrameEncryptor, KeyRing, StreamDecryptor};

fn base_key() -> BaseKey {
    BaseKey::derive_with_iterations(&EncryptionSecret::new("real frames secret").unwrap(), "session", 1000)
}

fn protect_all(codec: Codec, suite: CipherSuite, frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut tx = FrameEncryptor::new(suite, &base_key()).unwrap();
    frames.iter().map(|f| tx.encrypt(codec, f).unwrap()).collect()
}

#[test]
fn every_fixture_round_trips_under_every_suite() {
    for (name, codec) in FIXTURES {
        let frames = fixture(name);
        assert!(frames.len() >= 30, "{name}");
        for suite in CipherSuite::ALL {
            let protected = protect_all(codec, suite, &frames);
            let mut ring = KeyRing::new(suite);
            ring.set_base_key(base_key(), Instant::now());
            let mut rx = StreamDecryptor::new(codec);
            for (i, (p, f)) in protected.iter().zip(&frames).enumerate() {
                assert_ne!(p, f);
                assert_eq!(&rx.decrypt(&ring, p, Instant::now()).unwrap(), f, "{name} frame {i} suite {suite}");
            }
            assert_eq!(rx.stats().decrypted, frames.len() as u64);
        }
    }
}

/// The plaintext body never shows through: no 12-byte window of what follows the clear
/// prefix appears in the protected frame.
fn assert_hidden(original_body: &[u8], protected: &[u8], what: &str) {
    for w in original_body.chunks(12).filter(|w| w.len() == 12 && w.iter().any(|b| *b != 0 && *b != 0xff)) {
        assert!(!protected.windows(12).any(|p| p == w), "{what}: plaintext visible");
    }
}

#[test]
fn vp8_and_vp9_keep_their_payload_header() {
    for (name, codec) in [("vp8", Codec::Vp8), ("vp9", Codec::Vp9)] {
        let frames = fixture(name);
        let protected = protect_all(codec, CipherSuite::default(), &frames);
        let mut keys = 0;
        for (f, p) in frames.iter().zip(&protected) {
            let key =
                if codec == Codec::Vp8 { is_vp8_key(f) } else { f[0] & 0b0000_0100 == 0 && f[0] & 0b0000_1000 == 0 };
            let n = if key { 10 } else { 3 }.min(f.len());
            keys += key as usize;
            assert_eq!(&p[..n], &f[..n], "{name}: clear header");
            if codec == Codec::Vp8 {
                assert_eq!(is_vp8_key(p), is_vp8_key(f), "router's key-frame test");
                if key {
                    let (w, h) = (u16::from_le_bytes([p[6], p[7]]) & 0x3fff, u16::from_le_bytes([p[8], p[9]]) & 0x3fff);
                    assert_eq!((w, h), (320, 240), "resolution readable");
                }
            }
            assert_hidden(&f[n..], p, name);
        }
        assert!(keys >= 3, "{name}: fixture has key frames");
    }
}

#[test]
fn opus_keeps_its_toc_byte() {
    let frames = fixture("opus");
    let protected = protect_all(Codec::Opus, CipherSuite::default(), &frames);
    for (f, p) in frames.iter().zip(&protected) {
        assert_eq!(p[0], f[0]);
        assert_hidden(&f[1..], p, "opus");
    }
}

#[test]
fn h264_stays_a_valid_annex_b_stream_for_packetizers() {
    let mut multi_slice_frames = 0;
    for name in ["h264", "h264-slices"] {
        let frames = fixture(name);
        let protected = protect_all(Codec::H264, CipherSuite::default(), &frames);
        for (i, (f, p)) in frames.iter().zip(&protected).enumerate() {
            let (a, b) = (nal_units(f), nal_units(p));
            // The same NAL units in the same order: no start code emulated, none lost.
            assert_eq!(a.len(), b.len(), "{name} frame {i}: NAL count");
            let mut slices = 0;
            for (na, nb) in a.iter().zip(&b) {
                assert_eq!(na[0], nb[0], "NAL header");
                match na[0] & 0x1f {
                    7..=9 => assert_eq!(na, nb, "parameter sets and delimiters untouched"),
                    1 | 5 => {
                        slices += 1;
                        assert_eq!(slice_header(na), slice_header(nb), "first_mb/slice_type/pps_id readable");
                        assert!(slice_header(nb).is_some());
                        assert_eq!(*nb.last().unwrap(), 0x80);
                        assert_hidden(&na[8..], nb, name);
                    }
                    _ => {}
                }
                for w in nb.windows(3) {
                    assert!(!(w[0] == 0 && w[1] == 0 && w[2] <= 2), "emulated start code");
                }
            }
            assert!(slices >= 1);
            multi_slice_frames += (slices > 1) as usize;
        }
    }
    assert!(multi_slice_frames >= 20, "the 4-slice fixture exercises multi-unit frames");
}

#[test]
fn h264_survives_what_receivers_do_to_clear_nal_units() {
    // Receivers rebuild frames with 4-byte start codes, may drop AUDs and rewrite SPS VUI; none
    // of that is authenticated, so the frame still opens.
    let frames = fixture("h264");
    let protected = protect_all(Codec::H264, CipherSuite::default(), &frames);
    let mut ring = KeyRing::new(CipherSuite::default());
    ring.set_base_key(base_key(), Instant::now());
    let mut rx = StreamDecryptor::new(Codec::H264);
    for (f, p) in frames.iter().zip(&protected) {
        let rebuild = |nals: Vec<&[u8]>| -> Vec<u8> {
            let mut out = Vec::new();
            for nal in nals.into_iter().filter(|n| n[0] & 0x1f != 9) {
                out.extend_from_slice(&[0, 0, 0, 1]);
                if nal[0] & 0x1f == 7 {
                    let mut sps = nal.to_vec();
                    sps.push(0x42); // stand-in for a VUI rewrite
                    out.extend_from_slice(&sps);
                } else {
                    out.extend_from_slice(nal);
                }
            }
            out
        };
        let received = rebuild(nal_units(p));
        let opened = rx.decrypt(&ring, &received, Instant::now()).unwrap();
        assert_eq!(opened, rebuild(nal_units(f)));
    }
}

#[test]
fn av1_keeps_obu_structure_and_survives_depacketizer_rewrites() {
    let frames = fixture("av1");
    let protected = protect_all(Codec::Av1, CipherSuite::default(), &frames);
    let mut ring = KeyRing::new(CipherSuite::default());
    ring.set_base_key(base_key(), Instant::now());
    let mut rx = StreamDecryptor::new(Codec::Av1);
    let mut seq_headers = 0;
    for (f, p) in frames.iter().zip(&protected) {
        let (a, b) = (obus(f), obus(p));
        assert_eq!(a.len(), b.len());
        for (oa, ob) in a.iter().zip(&b) {
            assert_eq!((oa.0, oa.1), (ob.0, ob.1), "OBU header and extension readable");
            let ty = (oa.0 >> 3) & 0xf;
            if ty == 1 || ty == 2 {
                seq_headers += (ty == 1) as usize;
                assert_eq!(oa.2, ob.2, "sequence header / temporal delimiter clear");
            } else {
                assert_hidden(oa.2, p, "av1");
            }
        }
        // An RTP depacketizer drops temporal delimiters and writes every OBU with obu_size.
        let rebuild = |o: Vec<(u8, Option<u8>, &[u8])>| write_obus(&o, |t| t != 2);
        let opened = rx.decrypt(&ring, &rebuild(obus(p)), Instant::now()).unwrap();
        assert_eq!(opened, rebuild(obus(f)));
    }
    assert!(seq_headers >= 3);
}

#[test]
fn any_change_to_an_authenticated_byte_is_rejected() {
    let mut ring = KeyRing::new(CipherSuite::default());
    ring.set_base_key(base_key(), Instant::now());
    for (name, codec) in FIXTURES {
        let frames = fixture(name);
        let sample = &frames[1];
        let mut tx = FrameEncryptor::new(CipherSuite::default(), &base_key()).unwrap();
        let p = tx.encrypt(codec, sample).unwrap();
        // Clear H.264 parameter sets / AV1 sequence headers are the only unauthenticated bytes.
        let step = (p.len() / 200).max(1);
        for i in (0..p.len()).step_by(step) {
            let mut bad = p.clone();
            bad[i] ^= 0x10;
            let mut rx = StreamDecryptor::new(codec);
            if let Ok(opened) = rx.decrypt(&ring, &bad, Instant::now()) {
                assert_ne!(opened, *sample, "{name}: changed byte {i} but got the original back");
                assert!(matches!(codec, Codec::H264 | Codec::Av1), "{name}: byte {i} is not authenticated");
            }
        }
    }
}
