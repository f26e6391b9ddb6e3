//! `testdata/umbra-e2ee-vectors.json` is what the generator produces today (so it cannot drift
//! from the code), and every vector in it holds when read back as a second implementation
//! would: base keys from secrets, frames decrypted through the public receiver API.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::vectors::{codec_from_name, generate};
use umbra_e2ee::{BaseKey, CipherSuite, EncryptionSecret, Error, KeyRing, StreamDecryptor};

fn committed() -> Value {
    let path = support::testdata().join("umbra-e2ee-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn unhex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

#[test]
fn committed_vectors_match_the_generator() {
    assert!(
        committed() == generate(),
        "testdata/umbra-e2ee-vectors.json is stale: regenerate it with the command in its `generated_by` field"
    );
}

#[test]
fn base_keys_match_an_independent_pbkdf2() {
    // Computed with Python's hashlib.pbkdf2_hmac('sha256', secret, b'umbra/e2ee/v1/' + session, 600000, 32).
    let reference = [
        (
            "correct horse battery staple",
            "1_MX4xMjM0NX5-MTcwMDAwMDAwMDAwMH5yYW5kb21-fg",
            "0ad71e88993cad67baa3ef90d7d7d76dfe558e1148ee76f9be060f9c1858ef25",
        ),
        ("Grüße, 秘密 🔐🔐", "session-unicode", "eef670f01bed3076466e8e70bbfcb5f073343e4aa1c7bdc10bd3dfe6a88fcaf4"),
        ("12345678", "", "5a95fcbf4ff5b2ee72e1185725f8fbecc4969f39d7c7d02dd91c69b7f5a29517"),
    ];
    for (secret, session, expected) in reference {
        let key = BaseKey::derive(&EncryptionSecret::new(secret).unwrap(), session);
        assert_eq!(hex::encode(key.as_bytes()), expected, "{secret}");
    }
    let v = committed();
    for entry in v["base_keys"].as_array().unwrap() {
        let key = BaseKey::derive(
            &EncryptionSecret::new(entry["secret"].as_str().unwrap()).unwrap(),
            entry["session_id"].as_str().unwrap(),
        );
        assert_eq!(hex::encode(key.as_bytes()), entry["base_key"].as_str().unwrap());
    }
}

#[test]
fn secret_rule_vectors() {
    for entry in committed()["secret_rule"].as_array().unwrap() {
        let s = entry["secret"].as_str().unwrap();
        let result = EncryptionSecret::new(s);
        assert_eq!(result.is_ok(), entry["valid"].as_bool().unwrap(), "{s:?}");
        if let Err(e) = result {
            assert!(matches!(e, Error::InvalidEncryptionSecret(_)));
        }
    }
}

#[test]
fn frame_vectors_decrypt_through_the_receiver() {
    let v = committed();
    let base = BaseKey::from_bytes(unhex(&v["frame_base_key"]["base_key"]).try_into().unwrap());
    let frames = v["frames"].as_array().unwrap();
    assert!(frames.len() >= 30);
    for f in frames {
        let suite = CipherSuite::from_id(f["cipher_suite"].as_u64().unwrap() as u16).unwrap();
        let mut ring = KeyRing::new(suite);
        ring.set_base_key(base.clone(), Instant::now());
        let mut rx = StreamDecryptor::new(codec_from_name(f["codec"].as_str().unwrap()));
        let plain = rx.decrypt(&ring, &unhex(&f["protected"]), Instant::now()).unwrap();
        assert_eq!(plain, unhex(&f["plaintext"]), "{}", f["name"]);
    }
    for f in v["rejected_frames"].as_array().unwrap() {
        let mut ring = KeyRing::new(CipherSuite::Aes256CtrHmacSha512_80);
        ring.set_base_key(base.clone(), Instant::now());
        let mut rx = StreamDecryptor::new(codec_from_name(f["codec"].as_str().unwrap()));
        let err = rx.decrypt(&ring, &unhex(&f["protected"]), Instant::now()).unwrap_err();
        match f["expect"].as_str().unwrap() {
            "auth_failure" => assert_eq!(err, Error::EncryptionSecretMismatch, "{}", f["name"]),
            "malformed" => assert!(matches!(err, Error::DecryptionInternalError(_)), "{}: {err}", f["name"]),
            other => panic!("unknown expectation {other}"),
        }
    }
}
