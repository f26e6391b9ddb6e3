//! Generates `testdata/umbra-e2ee-vectors.json`, the vectors a second implementation (the Web
//! SDK) must reproduce byte for byte. Deterministic: fixed secrets, KIDs and counters.

use serde_json::{Value, json};
use umbra_e2ee::{BaseKey, CipherSuite, Codec, EncryptionSecret, SframeKey, open_frame, seal_frame};

use super::fixture;

const SESSION: &str = "1_MX4xMjM0NX5-MTcwMDAwMDAwMDAwMH5yYW5kb21-fg";

fn hex(b: &[u8]) -> String {
    hex::encode(b)
}

fn codec_name(c: Codec) -> &'static str {
    match c {
        Codec::Opaque => "opaque",
        Codec::Vp8 => "vp8",
        Codec::Vp9 => "vp9",
        Codec::H264 => "h264",
        Codec::Av1 => "av1",
        Codec::Opus => "opus",
    }
}

pub fn codec_from_name(name: &str) -> Codec {
    Codec::ALL.into_iter().find(|c| codec_name(*c) == name).expect("codec name")
}

/// The base key every frame vector uses: the first `base_keys` entry.
pub fn frame_base_key() -> BaseKey {
    BaseKey::derive(&EncryptionSecret::new("correct horse battery staple").unwrap(), SESSION)
}

fn frame_vector(
    name: &str,
    codec: Codec,
    suite: CipherSuite,
    base: &BaseKey,
    kid: u64,
    ctr: u64,
    plain: &[u8],
) -> Value {
    let key = SframeKey::derive(suite, base.as_bytes(), kid).unwrap();
    let protected = if plain.is_empty() { Vec::new() } else { seal_frame(codec, &key, kid, ctr, plain).unwrap() };
    json!({
        "name": name,
        "codec": codec_name(codec),
        "cipher_suite": suite.id(),
        "kid": kid.to_string(),
        "ctr": ctr.to_string(),
        "sframe_salt": hex(key.salt()),
        "plaintext": hex(plain),
        "protected": hex(&protected),
    })
}

/// Smallest delta frame of a fixture (keeps the file small while staying real).
fn smallest(frames: &[Vec<u8>], skip_first: bool) -> Vec<u8> {
    frames.iter().skip(skip_first as usize).min_by_key(|f| f.len()).unwrap().clone()
}

pub fn generate() -> Value {
    let secrets = [
        ("", false),
        ("1234567", false),
        ("12345678", true),
        ("Grüße, 秘密 🔐🔐", true),
        ("🔐🔐🔐🔐🔐🔐🔐", false), // 7 code points but 14 UTF-16 units
        ("🔐🔐🔐🔐🔐🔐🔐🔐", true),
    ];
    let mut rule: Vec<Value> = secrets
        .iter()
        .map(|(s, valid)| {
            assert_eq!(EncryptionSecret::new(s).is_ok(), *valid, "{s}");
            json!({ "secret": s, "valid": valid, "code_points": s.chars().count(), "utf16_units": s.encode_utf16().count() })
        })
        .collect();
    for (n, valid) in [(256, true), (257, false)] {
        let s = "é".repeat(n);
        assert_eq!(EncryptionSecret::new(&s).is_ok(), valid);
        rule.push(json!({ "secret": s, "valid": valid, "code_points": n, "utf16_units": n }));
    }

    let base_keys: Vec<Value> = [
        ("correct horse battery staple", SESSION),
        ("correct horse battery staple", "another-session"),
        ("Grüße, 秘密 🔐🔐", "session-unicode"),
        ("12345678", ""),
    ]
    .iter()
    .map(|(secret, session)| {
        let key = BaseKey::derive(&EncryptionSecret::new(secret).unwrap(), session);
        json!({ "secret": secret, "session_id": session, "iterations": umbra_e2ee::PBKDF2_ITERATIONS, "base_key": hex(key.as_bytes()) })
    })
    .collect();

    let base = frame_base_key();
    let suite6 = CipherSuite::Aes256CtrHmacSha512_80;
    let kid = 0x8a5c_1f3e_92d4_07b6;
    let mut frames = Vec::new();
    for (fixture_name, codec) in [
        ("vp8", Codec::Vp8),
        ("vp9", Codec::Vp9),
        ("h264", Codec::H264),
        ("h264-slices", Codec::H264),
        ("av1", Codec::Av1),
    ] {
        let all = fixture(fixture_name);
        frames.push(frame_vector(&format!("{fixture_name} key frame"), codec, suite6, &base, kid, 0, &all[0]));
        frames.push(frame_vector(
            &format!("{fixture_name} delta frame"),
            codec,
            suite6,
            &base,
            kid,
            1,
            &smallest(&all, true),
        ));
    }
    let opus = fixture("opus");
    frames.push(frame_vector("opus packet", Codec::Opus, suite6, &base, kid, 7, &opus[3]));
    for suite in CipherSuite::ALL {
        frames.push(frame_vector(
            &format!("opus packet, suite {}", suite.id()),
            Codec::Opus,
            suite,
            &base,
            5,
            300,
            &opus[4],
        ));
        frames.push(frame_vector(
            &format!("opaque, suite {}", suite.id()),
            Codec::Opaque,
            suite,
            &base,
            0xffff_ffff_ffff_ffff,
            0x1_0000_0000,
            b"Umbra forwards what it cannot read.",
        ));
    }
    frames.push(frame_vector(
        "vp8 key frame, suite 5",
        Codec::Vp8,
        CipherSuite::Aes256GcmSha512_128,
        &base,
        kid,
        2,
        &fixture("vp8")[0],
    ));
    frames.push(frame_vector("opus DTX (TOC byte only)", Codec::Opus, suite6, &base, kid, 8, &[0xfc]));
    frames.push(frame_vector("vp9 show-existing frame", Codec::Vp9, suite6, &base, kid, 9, &[0b1000_1001]));
    frames.push(frame_vector("empty frame", Codec::Vp8, suite6, &base, kid, 10, &[]));
    frames.push(frame_vector(
        "av1 OBUs with extension byte and a last OBU without obu_size",
        Codec::Av1,
        suite6,
        &base,
        kid,
        11,
        &[0x12, 0x00, 0x0a, 0x02, 0xaa, 0xbb, 0x36, 0x28, 0x03, 1, 2, 3, 0x34, 0x28, 9, 8, 7, 6],
    ));
    frames.push(escaping_vector(&base));

    let rejected = rejected_vectors(&base);
    json!({
        "description": "Umbra E2EE protocol v1 test vectors (docs/e2ee-protocol.md). Byte strings are hex; 64-bit integers are decimal strings.",
        "protocol": "umbra/e2ee/v1",
        "generated_by": "cargo run -p umbra-e2ee --example umbra-e2ee-vectors > testdata/umbra-e2ee-vectors.json",
        "frame_base_key": { "secret": "correct horse battery staple", "session_id": SESSION, "base_key": hex(base.as_bytes()) },
        "secret_rule": rule,
        "base_keys": base_keys,
        "frames": frames,
        "rejected_frames": rejected,
    })
}

/// An H.264 frame whose ciphertext needs emulation-prevention bytes: the counter is the first
/// one (searching upwards from 0) for which the escaped region contains `00 00 03`.
fn escaping_vector(base: &BaseKey) -> Value {
    let suite = CipherSuite::Aes256CtrHmacSha512_80;
    let kid = 77;
    let key = SframeKey::derive(suite, base.as_bytes(), kid).unwrap();
    let mut frame =
        vec![0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88, 0x84];
    frame.extend((0..16_384u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1));
    frame.push(0x80);
    for ctr in 0..10_000u64 {
        let protected = seal_frame(Codec::H264, &key, kid, ctr, &frame).unwrap();
        if protected.windows(3).skip(24).any(|w| w == [0, 0, 3]) {
            return frame_vector(
                "h264 with emulation prevention in the ciphertext",
                Codec::H264,
                suite,
                base,
                kid,
                ctr,
                &frame,
            );
        }
    }
    panic!("no counter below 10000 produced an escape");
}

fn rejected_vectors(base: &BaseKey) -> Vec<Value> {
    let suite = CipherSuite::Aes256CtrHmacSha512_80;
    let kid = 0x8a5c_1f3e_92d4_07b6;
    let key = SframeKey::derive(suite, base.as_bytes(), kid).unwrap();
    let other = BaseKey::derive(&EncryptionSecret::new("a different secret").unwrap(), SESSION);
    let other_key = SframeKey::derive(suite, other.as_bytes(), kid).unwrap();
    let vp8 = &fixture("vp8")[1];
    let h264 = &fixture("h264")[1];
    let good_vp8 = seal_frame(Codec::Vp8, &key, kid, 20, vp8).unwrap();
    let good_h264 = seal_frame(Codec::H264, &key, kid, 21, h264).unwrap();
    let mut flipped_tag = good_vp8.clone();
    *flipped_tag.last_mut().unwrap() ^= 1;
    let mut flipped_head = good_vp8.clone();
    flipped_head[1] ^= 1;
    let mut no_terminator = good_h264.clone();
    no_terminator.pop();
    let mut entries = vec![
        (
            "vp8 under another secret",
            Codec::Vp8,
            seal_frame(Codec::Vp8, &other_key, kid, 20, vp8).unwrap(),
            "auth_failure",
        ),
        ("vp8 with a flipped tag bit", Codec::Vp8, flipped_tag, "auth_failure"),
        ("vp8 with a flipped clear header bit", Codec::Vp8, flipped_head, "auth_failure"),
        ("vp8 truncated by one byte", Codec::Vp8, good_vp8[..good_vp8.len() - 1].to_vec(), "auth_failure"),
        ("vp8 delta frame shorter than its 3-byte header", Codec::Vp8, vec![0x31, 0x02], "malformed"),
        ("h264 without its 0x80 terminator", Codec::H264, no_terminator, "malformed"),
        ("h264 without a start code", Codec::H264, good_h264[4..].to_vec(), "malformed"),
        ("opus TOC only, no SFrame header", Codec::Opus, vec![0xfc], "malformed"),
        ("opaque with a truncated SFrame header", Codec::Opaque, vec![0xff, 0x01, 0x02], "malformed"),
    ];
    entries.push(("vp8 decoded as opaque", Codec::Opaque, good_vp8.clone(), "auth_failure"));
    entries
        .into_iter()
        .map(|(name, codec, protected, expect)| {
            let outcome = match open_frame(codec, &key, &protected) {
                Ok(Ok(_)) => "accepted",
                Ok(Err(_)) => "auth_failure",
                Err(_) => "malformed",
            };
            assert_eq!(outcome, expect, "{name}");
            json!({ "name": name, "codec": codec_name(codec), "cipher_suite": suite.id(), "kid": kid.to_string(), "protected": hex(&protected), "expect": expect })
        })
        .collect()
}
