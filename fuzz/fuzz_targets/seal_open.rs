//! Any frame the sender accepts opens to the same frame (AV1: with minimal obu_size), and a
//! single flipped bit in it never opens to the original.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use umbra_e2ee::{BaseKey, CipherSuite, Codec, FrameEncryptor, KeyRing, StreamDecryptor};

fuzz_target!(|data: &[u8]| {
    let [c, flip_at, frame @ ..] = data else { return };
    let codec = Codec::ALL[*c as usize % Codec::ALL.len()];
    let base = BaseKey::from_bytes([2; 32]);
    let mut tx = FrameEncryptor::new(CipherSuite::default(), &base).expect("encryptor");
    let Ok(protected) = tx.encrypt(codec, frame) else { return };
    let mut ring = KeyRing::new(CipherSuite::default());
    ring.set_base_key(base, Instant::now());
    let opened = StreamDecryptor::new(codec).decrypt(&ring, &protected, Instant::now()).expect("own frame opens");
    if codec != Codec::Av1 {
        assert_eq!(opened, frame);
    }
    if !protected.is_empty() {
        let mut bad = protected.clone();
        let i = *flip_at as usize % bad.len();
        bad[i] ^= 0x01;
        if let Ok(other) = StreamDecryptor::new(codec).decrypt(&ring, &bad, Instant::now()) {
            // Only clear, unauthenticated parts (H.264 parameter sets, AV1 sequence headers)
            // may change, and then the output changes with them.
            assert!(matches!(codec, Codec::H264 | Codec::Av1));
            assert_ne!(other, opened);
        }
    }
});
