//! Sender and receiver behaviour over time: mismatch and match events, secret rotation with
//! the grace period, replays, counter rollover, bounded state, malformed input.

mod support;

use std::time::{Duration, Instant};

use umbra_e2ee::{
    BaseKey, CipherSuite, Codec, DEFAULT_GRACE_PERIOD, E2eeEvent, EncryptionSecret, Error, FrameEncryptor, KeyRing,
    MAX_KIDS_PER_STREAM, SecretRuleViolation, StreamDecryptor,
};

const SUITE: CipherSuite = CipherSuite::Aes256CtrHmacSha512_80;
const FRAME_INTERVAL: Duration = Duration::from_millis(33);

fn key(secret: &str) -> BaseKey {
    // Fewer iterations keep these tests fast; the 600 000-iteration path is checked against
    // an independent PBKDF2 in own_vectors.rs.
    BaseKey::derive_with_iterations(&EncryptionSecret::new(secret).unwrap(), "1_session", 1000)
}

fn ring(secret: &str, now: Instant) -> KeyRing {
    let mut r = KeyRing::new(SUITE);
    r.set_base_key(key(secret), now);
    r
}

fn events(rx: &mut StreamDecryptor) -> Vec<E2eeEvent> {
    std::iter::from_fn(|| rx.poll_event()).collect()
}

fn frames() -> Vec<Vec<u8>> {
    support::fixture("vp8")
}

#[test]
fn mismatch_is_reported_once_then_match_once() {
    let t0 = Instant::now();
    let mut tx = FrameEncryptor::new(SUITE, &key("publisher secret")).unwrap();
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let mut ring = ring("subscriber secret", t0);
    let frames = frames();
    let mut mismatch_at = None;
    for i in 0..30u32 {
        let now = t0 + FRAME_INTERVAL * i;
        let p = tx.encrypt(Codec::Vp8, &frames[i as usize % frames.len()]).unwrap();
        assert_eq!(rx.decrypt(&ring, &p, now), Err(Error::EncryptionSecretMismatch), "no frame reaches the decoder");
        let ev = events(&mut rx);
        if !ev.is_empty() {
            assert_eq!(ev, vec![E2eeEvent::EncryptionSecretMismatch]);
            assert!(mismatch_at.replace(i).is_none(), "reported twice");
        }
    }
    // 10 frames and 500 ms: the 16th frame (t = 528 ms) is the first to meet both.
    assert_eq!(mismatch_at, Some(16));
    assert!(rx.is_mismatched());
    assert_eq!(rx.stats().auth_failures, 30);

    let now = t0 + FRAME_INTERVAL * 31;
    ring.set_base_key(key("publisher secret"), now);
    let p = tx.encrypt(Codec::Vp8, &frames[0]).unwrap();
    assert_eq!(rx.decrypt(&ring, &p, now).unwrap(), frames[0]);
    assert_eq!(events(&mut rx), vec![E2eeEvent::EncryptionSecretMatch]);
    let p = tx.encrypt(Codec::Vp8, &frames[1]).unwrap();
    assert_eq!(rx.decrypt(&ring, &p, now + FRAME_INTERVAL).unwrap(), frames[1]);
    assert!(events(&mut rx).is_empty(), "one event per state change");
}

#[test]
fn publisher_rotation_followers_keep_decoding_others_mismatch() {
    let t0 = Instant::now();
    let frames = frames();
    let mut tx = FrameEncryptor::new(SUITE, &key("first secret")).unwrap();
    let first_kid = tx.kid();
    let (mut follower, mut stayer) = (StreamDecryptor::new(Codec::Vp8), StreamDecryptor::new(Codec::Vp8));
    let mut follower_ring = ring("first secret", t0);
    let stayer_ring = ring("first secret", t0);
    let mut decoded = 0;
    for i in 0..60u32 {
        let now = t0 + FRAME_INTERVAL * i;
        if i == 20 {
            tx.set_base_key(&key("second secret")).unwrap();
            assert_ne!(tx.kid(), first_kid, "a new secret is a new KID");
            assert_eq!(tx.next_counter(), 0);
        }
        if i == 23 {
            // The follower learns the new secret 100 ms after the publisher switched.
            follower_ring.set_base_key(key("second secret"), now);
        }
        let f = &frames[i as usize % frames.len()];
        let p = tx.encrypt(Codec::Vp8, f).unwrap();
        if let Ok(plain) = follower.decrypt(&follower_ring, &p, now) {
            assert_eq!(&plain, f);
            decoded += 1;
        }
        let _ = stayer.decrypt(&stayer_ring, &p, now);
    }
    assert_eq!(decoded, 57, "only the 3 frames before the follower switched are lost");
    assert!(events(&mut follower).is_empty(), "a 100 ms gap is not a mismatch");
    assert_eq!(events(&mut stayer), vec![E2eeEvent::EncryptionSecretMismatch]);
}

#[test]
fn previous_secret_decrypts_only_during_the_grace_period() {
    let t0 = Instant::now();
    let frames = frames();
    let mut tx = FrameEncryptor::new(SUITE, &key("old secret")).unwrap();
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let mut ring = ring("old secret", t0);
    rx.decrypt(&ring, &tx.encrypt(Codec::Vp8, &frames[0]).unwrap(), t0).unwrap();
    // The receiver switches first; the publisher lags.
    ring.set_base_key(key("new secret"), t0);
    let inside = t0 + DEFAULT_GRACE_PERIOD - Duration::from_millis(1);
    assert!(rx.decrypt(&ring, &tx.encrypt(Codec::Vp8, &frames[1]).unwrap(), inside).is_ok());
    // A second stream that never saw the old KID also tries the previous secret.
    let mut late = StreamDecryptor::new(Codec::Vp8);
    assert!(late.decrypt(&ring, &tx.encrypt(Codec::Vp8, &frames[2]).unwrap(), inside).is_ok());
    let after = t0 + DEFAULT_GRACE_PERIOD;
    assert_eq!(
        rx.decrypt(&ring, &tx.encrypt(Codec::Vp8, &frames[3]).unwrap(), after),
        Err(Error::EncryptionSecretMismatch)
    );
    assert_eq!(rx.tracked_kids(), 0, "keys of an expired secret are forgotten");
    // Setting the same secret again changes nothing: no new epoch, no grace reset.
    let mut tx2 = FrameEncryptor::new(SUITE, &key("new secret")).unwrap();
    rx.decrypt(&ring, &tx2.encrypt(Codec::Vp8, &frames[4]).unwrap(), after).unwrap();
    ring.set_base_key(key("new secret"), after);
    rx.decrypt(&ring, &tx2.encrypt(Codec::Vp8, &frames[5]).unwrap(), after).unwrap();
    assert_eq!(rx.tracked_kids(), 1);
}

#[test]
fn replays_are_dropped_without_events() {
    let t0 = Instant::now();
    let frames = frames();
    let mut tx = FrameEncryptor::new(SUITE, &key("secret one")).unwrap();
    let ring = ring("secret one", t0);
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let protected: Vec<_> = frames.iter().map(|f| tx.encrypt(Codec::Vp8, f).unwrap()).collect();
    // Out of order within the window is fine.
    for i in [1, 0, 3, 2, 4] {
        assert_eq!(rx.decrypt(&ring, &protected[i], t0).unwrap(), frames[i]);
    }
    for (i, p) in protected.iter().take(5).enumerate() {
        assert!(matches!(rx.decrypt(&ring, p, t0), Err(Error::ReplayedFrame { ctr, .. }) if ctr == i as u64));
    }
    assert_eq!(rx.stats().replayed, 5);
    assert!(events(&mut rx).is_empty());
    // A forged frame with a fresh counter does not move the window: the real one still opens.
    let real = tx.encrypt(Codec::Vp8, &frames[5]).unwrap();
    let mut forged = real.clone();
    *forged.last_mut().unwrap() ^= 1;
    assert!(rx.decrypt(&ring, &forged, t0).is_err());
    assert_eq!(rx.decrypt(&ring, &real, t0).unwrap(), frames[5]);
}

#[test]
fn counter_never_wraps_a_new_kid_takes_over() {
    let t0 = Instant::now();
    let frames = frames();
    let mut tx = FrameEncryptor::new(SUITE, &key("rollover secret")).unwrap();
    tx.set_counter_limit(5);
    let ring = ring("rollover secret", t0);
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let mut kids = Vec::new();
    for (i, f) in frames.iter().take(12).enumerate() {
        let p = tx.encrypt(Codec::Vp8, f).unwrap();
        assert!(tx.next_counter() <= 5);
        kids.push(tx.kid());
        assert_eq!(rx.decrypt(&ring, &p, t0).unwrap(), *f, "frame {i}");
    }
    kids.dedup();
    assert_eq!(kids.len(), 3, "a new KID every 5 frames");
}

#[test]
fn kid_state_is_bounded() {
    let t0 = Instant::now();
    let frames = frames();
    let ring = ring("many senders", t0);
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    for i in 0..100 {
        let mut tx = FrameEncryptor::new(SUITE, &key("many senders")).unwrap();
        assert_eq!(
            rx.decrypt(&ring, &tx.encrypt(Codec::Vp8, &frames[i % frames.len()]).unwrap(), t0).unwrap(),
            frames[i % frames.len()]
        );
        assert!(rx.tracked_kids() <= MAX_KIDS_PER_STREAM);
    }
    assert_eq!(rx.tracked_kids(), MAX_KIDS_PER_STREAM);
}

#[test]
fn every_truncation_is_rejected_and_reported_at_most_once() {
    let t0 = Instant::now();
    let frames = frames();
    let ring = ring("truncation", t0);
    for codec in [Codec::Vp8, Codec::Opaque] {
        let mut tx = FrameEncryptor::new(SUITE, &key("truncation")).unwrap();
        let p = tx.encrypt(codec, &frames[0]).unwrap();
        let mut rx = StreamDecryptor::new(codec);
        for cut in 1..p.len() {
            let now = t0 + Duration::from_millis(cut as u64 / 100);
            assert!(rx.decrypt(&ring, &p[..cut], now).is_err(), "{codec}: cut at {cut} opened");
        }
        let ev = events(&mut rx);
        assert!(ev.iter().filter(|e| matches!(e, E2eeEvent::DecryptionInternalError(_))).count() <= 1, "{ev:?}");
        assert!(rx.stats().malformed >= 1);
        assert_eq!(rx.decrypt(&ring, &p, t0).unwrap(), frames[0], "the intact frame still opens");
    }
}

#[test]
fn missing_secret_and_secret_rule() {
    let empty_ring = KeyRing::new(SUITE);
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    assert_eq!(rx.decrypt(&empty_ring, &[0x31, 1, 2, 3, 4], Instant::now()), Err(Error::EncryptionSecretMissing));

    assert_eq!(
        EncryptionSecret::new("").unwrap_err(),
        Error::InvalidEncryptionSecret(SecretRuleViolation::TooShort { chars: 0 })
    );
    assert_eq!(
        EncryptionSecret::new("1234567").unwrap_err(),
        Error::InvalidEncryptionSecret(SecretRuleViolation::TooShort { chars: 7 })
    );
    assert!(EncryptionSecret::new("12345678").is_ok());
    assert!(EncryptionSecret::new(&"x".repeat(256)).is_ok());
    assert_eq!(
        EncryptionSecret::new(&"x".repeat(257)).unwrap_err(),
        Error::InvalidEncryptionSecret(SecretRuleViolation::TooLong { chars: 257 })
    );
    // Code points, not bytes or UTF-16 units: 8 emoji are 32 bytes and 16 UTF-16 units.
    assert!(EncryptionSecret::new("🔐🔐🔐🔐🔐🔐🔐🔐").is_ok());
    assert!(EncryptionSecret::new("🔐🔐🔐🔐🔐🔐🔐").is_err());
    assert!(EncryptionSecret::new(&"🔐".repeat(256)).is_ok());
    assert!(!format!("{:?}", EncryptionSecret::new("do not print me").unwrap()).contains("print"));
}

#[test]
fn one_secret_many_senders_distinct_kids_and_sessions() {
    let secret = EncryptionSecret::new("shared by everyone").unwrap();
    let a = BaseKey::derive_with_iterations(&secret, "session-a", 1000);
    let b = BaseKey::derive_with_iterations(&secret, "session-b", 1000);
    assert_ne!(a, b, "the session id salts the key");
    let kids: std::collections::HashSet<u64> = (0..64).map(|_| FrameEncryptor::new(SUITE, &a).unwrap().kid()).collect();
    assert_eq!(kids.len(), 64, "each sender draws its own KID");
    let t0 = Instant::now();
    let mut ring_b = KeyRing::new(SUITE);
    ring_b.set_base_key(b, t0);
    let mut tx = FrameEncryptor::new(SUITE, &a).unwrap();
    let p = tx.encrypt(Codec::Opus, &[0xfc, 1, 2, 3]).unwrap();
    assert_eq!(
        StreamDecryptor::new(Codec::Opus).decrypt(&ring_b, &p, t0),
        Err(Error::EncryptionSecretMismatch),
        "keys do not cross sessions"
    );
}

#[test]
fn empty_and_oversized_frames() {
    let mut tx = FrameEncryptor::new(SUITE, &key("sizes secret")).unwrap();
    assert_eq!(tx.encrypt(Codec::Vp8, &[]).unwrap(), Vec::<u8>::new());
    assert_eq!(tx.next_counter(), 0, "nothing sent, no counter spent");
    let huge = vec![0x31u8; umbra_e2ee::MAX_FRAME_LEN + 1];
    assert!(matches!(
        tx.encrypt(Codec::Vp8, &huge),
        Err(Error::EncryptionInternalError(umbra_e2ee::FrameError::TooLarge { .. }))
    ));
    assert!(matches!(
        tx.encrypt(Codec::Vp8, &[0x30, 1]),
        Err(Error::EncryptionInternalError(umbra_e2ee::FrameError::Malformed { .. }))
    ));
    assert!(matches!(tx.encrypt(Codec::H264, &[0x65, 1, 2]), Err(Error::EncryptionInternalError(_))));
}

#[test]
fn a_sender_that_does_not_encrypt_is_reported_as_such_never_as_a_mismatch() {
    // Real encoder output sent as it is, as a client that declares E2EE but does not encrypt
    // would: for every codec, one StreamNotEncrypted, no mismatch, nothing reaches the decoder.
    let t0 = Instant::now();
    for (name, codec) in [
        ("vp8", Codec::Vp8),
        ("vp9", Codec::Vp9),
        ("h264", Codec::H264),
        ("h264-slices", Codec::H264),
        ("av1", Codec::Av1),
        ("opus", Codec::Opus),
    ] {
        let ring = ring("the receiver's secret", t0);
        let mut rx = StreamDecryptor::new(codec);
        let mut all = vec![];
        let plain = support::fixture(name);
        for i in 0..60u32 {
            let frame = &plain[i as usize % plain.len()];
            if frame.is_empty() {
                continue;
            }
            assert!(rx.decrypt(&ring, frame, t0 + FRAME_INTERVAL * i).is_err(), "{name}: a plain frame opened");
            all.extend(events(&mut rx));
        }
        let verdicts: Vec<_> = all.iter().filter(|e| !matches!(e, E2eeEvent::DecryptionInternalError(_))).collect();
        assert_eq!(verdicts, vec![&E2eeEvent::StreamNotEncrypted], "{name}: {all:?}");
        assert!(rx.is_mismatched());
    }
}

#[test]
fn frames_delivered_again_from_a_sender_with_another_secret_are_still_a_mismatch() {
    // As Chromium's receive transform hands them over when RTX copies of a frame's packets keep
    // arriving: the second frame 17 times, then the rest once each.
    let t0 = Instant::now();
    let ring = ring("the receiver's secret", t0);
    let mut tx = FrameEncryptor::new(SUITE, &key("the sender's secret")).unwrap();
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let plain = frames();
    let mut all = vec![];
    let mut now = t0;
    for i in 0..20 {
        let p = tx.encrypt(Codec::Vp8, &plain[i % plain.len()]).unwrap();
        for _ in 0..if i == 1 { 17 } else { 1 } {
            assert_eq!(rx.decrypt(&ring, &p, now), Err(Error::EncryptionSecretMismatch));
            all.extend(events(&mut rx));
            now += Duration::from_millis(2);
        }
        now += FRAME_INTERVAL;
    }
    assert_eq!(all, vec![E2eeEvent::EncryptionSecretMismatch]);
    assert_eq!(rx.stats().auth_failures, 36, "every copy failed authentication, and is counted as such");
}

#[test]
fn a_mismatched_sender_is_never_called_unencrypted_for_any_codec() {
    let t0 = Instant::now();
    for (name, codec) in
        [("vp8", Codec::Vp8), ("vp9", Codec::Vp9), ("h264", Codec::H264), ("av1", Codec::Av1), ("opus", Codec::Opus)]
    {
        let ring = ring("the receiver's secret", t0);
        let mut tx = FrameEncryptor::new(SUITE, &key("the sender's secret")).unwrap();
        let mut rx = StreamDecryptor::new(codec);
        let mut all = vec![];
        let plain = support::fixture(name);
        for i in 0..60u32 {
            let frame = &plain[i as usize % plain.len()];
            if frame.is_empty() {
                continue;
            }
            let p = tx.encrypt(codec, frame).unwrap();
            // Every seventh frame lost on the way.
            if i % 7 != 3 {
                let _ = rx.decrypt(&ring, &p, t0 + FRAME_INTERVAL * i);
            }
            all.extend(events(&mut rx));
        }
        assert_eq!(all, vec![E2eeEvent::EncryptionSecretMismatch], "{name}");
    }
}
