//! Property tests (a bounded stand-in for fuzzing in the test command; `fuzz/` has the
//! cargo-fuzz target): arbitrary frames round-trip for every codec, arbitrary input never
//! panics the receiver and never yields a frame unless it authenticates.

mod support;

use std::time::Instant;

use proptest::prelude::*;
use umbra_e2ee::{BaseKey, CipherSuite, Codec, Error, FrameEncryptor, Header, KeyRing, StreamDecryptor};

fn base() -> BaseKey {
    BaseKey::from_bytes([7; 32])
}

fn codec() -> impl Strategy<Value = Codec> {
    prop::sample::select(Codec::ALL.to_vec())
}

fn suite() -> impl Strategy<Value = CipherSuite> {
    prop::sample::select(CipherSuite::ALL.to_vec())
}

/// Rewrites every `obu_size` of a well-formed OBU sequence in its shortest leb128 form. OBUs
/// without a size field keep none (they run to the end of the frame).
fn minimal_obu_sizes(frame: &[u8]) -> Vec<u8> {
    let obus = support::obus(frame);
    let last_unsized = obus.last().filter(|o| o.0 & 0x02 == 0).map(|o| (o.0, o.1, o.2.to_vec()));
    let sized: Vec<_> = obus.into_iter().filter(|o| o.0 & 0x02 != 0).collect();
    let mut out = support::write_obus(&sized, |_| true);
    if let Some((h, ext, payload)) = last_unsized {
        out.push(h);
        out.extend(ext);
        out.extend(payload);
    }
    out
}

/// Frames that look like each codec's bitstream often enough to reach the deep paths.
fn frame() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..600),
        // Annex B-ish: start codes, NAL headers, runs of zeros.
        prop::collection::vec(
            prop_oneof![
                Just(vec![0u8, 0, 0, 1]),
                Just(vec![0u8, 0]),
                Just(vec![0x65u8, 0x88]),
                Just(vec![0x41u8, 0x9a]),
                Just(vec![0x67u8]),
                prop::collection::vec(any::<u8>(), 1..20)
            ],
            0..30
        )
        .prop_map(|parts| parts.concat()),
        // OBU-ish: header bytes with the size bit and small sizes.
        prop::collection::vec(
            (
                prop::sample::select(vec![0x0au8, 0x12, 0x32, 0x36, 0x22, 0x1a, 0x30]),
                prop::collection::vec(any::<u8>(), 0..12)
            ),
            0..8
        )
        .prop_map(|obus| obus
            .into_iter()
            .flat_map(|(h, p)| {
                let mut v = vec![h];
                if h & 4 != 0 {
                    v.push(0x28);
                }
                if h & 2 != 0 {
                    v.push(p.len() as u8);
                }
                v.extend(p);
                v
            })
            .collect()),
    ]
}

/// Annex B frames that mostly parse: start codes, NAL headers, slice headers whose first
/// three Exp-Golomb fields are short, payloads with zero runs (to exercise escaping).
fn h264_frame() -> impl Strategy<Value = Vec<u8>> {
    let nal = (
        prop::sample::select(vec![vec![0u8, 0, 1], vec![0u8, 0, 0, 1]]),
        prop::sample::select(vec![0x67u8, 0x68, 0x65, 0x41, 0x01, 0x06, 0x09, 0x0c, 0x74]),
        prop::sample::select(vec![0x88u8, 0xe0, 0xb8, 0x9a, 0xc4]),
        prop::collection::vec(prop_oneof![any::<u8>(), Just(0u8), Just(3u8)], 0..80),
    )
        .prop_map(|(sc, h, first, body)| {
            let mut v = sc;
            v.push(h);
            v.push(first);
            v.extend(body);
            v.push(0x80);
            v
        });
    prop::collection::vec(nal, 1..6).prop_map(|n| n.concat())
}

fn codec_and_frame() -> impl Strategy<Value = (Codec, Vec<u8>)> {
    codec().prop_flat_map(|c| {
        let f = if c == Codec::H264 { prop_oneof![3 => h264_frame(), 1 => frame()].boxed() } else { frame().boxed() };
        (Just(c), f)
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn whatever_the_sender_accepts_round_trips((codec, frame) in codec_and_frame(), suite in suite()) {
        let mut tx = FrameEncryptor::new(suite, &base()).unwrap();
        let mut ring = KeyRing::new(suite);
        ring.set_base_key(base(), Instant::now());
        let mut rx = StreamDecryptor::new(codec);
        match tx.encrypt(codec, &frame) {
            Ok(p) => {
                let opened = rx.decrypt(&ring, &p, Instant::now()).unwrap();
                // AV1 comes back with minimal obu_size encodings, as an RTP depacketizer
                // would produce anyway; everything else byte for byte.
                let expected = if codec == Codec::Av1 { minimal_obu_sizes(&frame) } else { frame };
                prop_assert_eq!(opened, expected)
            }
            Err(e) => prop_assert!(matches!(e, Error::EncryptionInternalError(_)), "{e}"),
        }
    }

    #[test]
    fn arbitrary_input_never_opens_and_never_panics((codec, garbage) in codec_and_frame(), suite in suite(), kid in any::<u64>(), ctr in any::<u64>()) {
        let mut ring = KeyRing::new(suite);
        ring.set_base_key(base(), Instant::now());
        let mut rx = StreamDecryptor::new(codec);
        // Raw garbage, and garbage behind a well-formed SFrame header.
        let mut with_header = Header::new(kid, ctr).encode();
        with_header.extend_from_slice(&garbage);
        for input in [garbage.clone(), with_header] {
            match rx.decrypt(&ring, &input, Instant::now()) {
                Ok(out) => prop_assert!(input.is_empty() && out.is_empty(), "unauthenticated frame accepted"),
                Err(e) => prop_assert!(matches!(e, Error::EncryptionSecretMismatch | Error::DecryptionInternalError(_)), "{e}"),
            }
        }
    }

    #[test]
    fn mutated_frames_never_open_to_something_else(codec in prop::sample::select(vec![Codec::Vp8, Codec::Vp9, Codec::Opus, Codec::Opaque]), frame in prop::collection::vec(any::<u8>(), 12..300), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut tx = FrameEncryptor::new(CipherSuite::default(), &base()).unwrap();
        let Ok(p) = tx.encrypt(codec, &frame) else { return Ok(()) };
        let mut bad = p.clone();
        let i = at.index(bad.len());
        bad[i] ^= 1 << bit;
        let mut ring = KeyRing::new(CipherSuite::default());
        ring.set_base_key(base(), Instant::now());
        prop_assert!(StreamDecryptor::new(codec).decrypt(&ring, &bad, Instant::now()).is_err(), "bit flip at {i} accepted");
    }

    #[test]
    fn header_round_trips(kid in any::<u64>(), ctr in any::<u64>()) {
        let h = Header::new(kid, ctr);
        let enc = h.encode();
        prop_assert_eq!(enc.len(), h.len());
        prop_assert_eq!(Header::decode(&enc).unwrap(), (h, enc.len()));
    }
}
