//! Any byte string, for any codec and suite, as a received frame: must never panic, never
//! open without authenticating. The first two bytes pick codec and suite.
#![no_main]

use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use umbra_e2ee::{BaseKey, CipherSuite, Codec, KeyRing, StreamDecryptor};

fuzz_target!(|data: &[u8]| {
    let [c, s, frame @ ..] = data else { return };
    let codec = Codec::ALL[*c as usize % Codec::ALL.len()];
    let suite = CipherSuite::ALL[*s as usize % CipherSuite::ALL.len()];
    let mut ring = KeyRing::new(suite);
    ring.set_base_key(BaseKey::from_bytes([1; 32]), Instant::now());
    let mut rx = StreamDecryptor::new(codec);
    if let Ok(out) = rx.decrypt(&ring, frame, Instant::now()) {
        assert!(frame.is_empty() && out.is_empty(), "unauthenticated frame opened");
    }
    while rx.poll_event().is_some() {}
});
