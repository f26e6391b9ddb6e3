//! Generates `testdata/umbra-signal-vectors.json`: encrypted signals (docs/e2ee-protocol.md §12)
//! that a second implementation must produce byte for byte, and sequences of received signals
//! with what each must give. Deterministic: fixed secrets, KIDs and counters.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use umbra_e2ee::{
    BaseKey, EncryptionSecret, MAX_SIGNAL_PLAINTEXT, MAX_SIGNAL_WIRE_DATA, SIGNAL_KEY_LABEL, SIGNAL_SUITE,
    SIGNAL_WIRE_TYPE, SframeKey, SignalSealer, signal_base_key_bytes,
};

pub const SESSION: &str = "1_MX4xMjM0NX5-MTcwMDAwMDAwMDAwMH5yYW5kb21-fg";
pub const SECRETS: [&str; 2] = ["correct horse battery staple", "another secret entirely"];

pub fn base_key(i: usize) -> BaseKey {
    BaseKey::derive(&EncryptionSecret::new(SECRETS[i]).unwrap(), SESSION)
}

fn seal(key: usize, sender: &str, kid: u64, ctr: u64, ty: &str, data: &str) -> String {
    SignalSealer::with_kid(&base_key(key), sender, kid, ctr).unwrap().seal(SESSION, ty, data).unwrap()
}

fn signal(name: &str, key: usize, sender: &str, kid: u64, ctr: u64, ty: &str, data: &str) -> Value {
    json!({
        "name": name, "key": key, "sender": sender, "kid": kid.to_string(), "ctr": ctr.to_string(),
        "signal_type": ty, "data": data, "wire_data": seal(key, sender, kid, ctr, ty, data),
    })
}

fn ok(from: Option<&str>, wire: &str, ty: &str, data: &str) -> Value {
    json!({"from": from, "wire_data": wire, "expect": {"signal_type": ty, "data": data}})
}

fn err(from: Option<&str>, wire: &str, error: &str) -> Value {
    json!({"from": from, "wire_data": wire, "expect": {"error": error}})
}

/// A well-authenticated signal whose plaintext breaks the format (what a buggy sender makes).
fn sealed_plaintext(sender: &str, kid: u64, pt: &[u8]) -> String {
    let key = SframeKey::derive(SIGNAL_SUITE, &signal_base_key_bytes(&base_key(0)).unwrap(), kid).unwrap();
    let mut meta = Vec::new();
    for part in [SESSION, sender] {
        meta.extend_from_slice(&(part.len() as u16).to_be_bytes());
        meta.extend_from_slice(part.as_bytes());
    }
    URL_SAFE_NO_PAD.encode(key.encrypt(kid, 0, &meta, pt).unwrap())
}

fn flip(wire: &str, byte_from_end: usize) -> String {
    let mut b = URL_SAFE_NO_PAD.decode(wire).unwrap();
    let i = b.len() - 1 - byte_from_end;
    b[i] ^= 0x01;
    URL_SAFE_NO_PAD.encode(b)
}

pub fn generate() -> Value {
    let a = "conn-alice";
    let b = "conn-bob";
    let big = "x".repeat(MAX_SIGNAL_PLAINTEXT - 1);
    let signals = vec![
        signal("typed", 0, a, 0x0123_4567_89ab_cdef, 0, "chat", "hello, world"),
        signal("no type", 0, a, 0x0123_4567_89ab_cdef, 1, "", "data without a type"),
        signal("unicode data", 0, b, 5, 300, "chat", "Grüße, 秘密 🔐"),
        signal("empty data", 0, b, 5, 301, "ping", ""),
        signal("largest", 0, a, u64::MAX, u64::MAX - 1, "t", &big),
    ];

    let w0 = seal(0, a, 42, 0, "chat", "first");
    let w1 = seal(0, a, 42, 1, "chat", "second");
    let w2 = seal(0, a, 42, 2, "chat", "third");
    let other = seal(1, a, 43, 0, "chat", "other secret");
    let receive = vec![
        json!({"name": "in order, out of order, replays", "key": 0, "session_id": SESSION, "sequence": [
            ok(Some(a), &w1, "chat", "second"),
            ok(Some(a), &w0, "chat", "first"),
            err(Some(a), &w1, "ReplayedSignal"),
            err(Some(a), &w0, "ReplayedSignal"),
            ok(Some(a), &w2, "chat", "third"),
        ]}),
        json!({"name": "wrong secret", "key": 1, "session_id": SESSION, "sequence": [
            err(Some(a), &w0, "EncryptionSecretMismatch"),
            ok(Some(a), &other, "chat", "other secret"),
        ]}),
        json!({"name": "tampered", "key": 0, "session_id": SESSION, "sequence": [
            err(Some(a), &flip(&w0, 0), "EncryptionSecretMismatch"),
            err(Some(a), &flip(&w0, 12), "EncryptionSecretMismatch"),
            err(Some(a), &flip(&w0, 20), "EncryptionSecretMismatch"),
            ok(Some(a), &w0, "chat", "first"),
        ]}),
        json!({"name": "wrong session", "key": 0, "session_id": "another-session", "sequence": [
            err(Some(a), &w0, "EncryptionSecretMismatch"),
        ]}),
        json!({"name": "wrong sender or a REST signal", "key": 0, "session_id": SESSION, "sequence": [
            err(Some(b), &w0, "EncryptionSecretMismatch"),
            err(None, &w0, "EncryptionSecretMismatch"),
            ok(Some(a), &w0, "chat", "first"),
        ]}),
        json!({"name": "malformed", "key": 0, "session_id": SESSION, "sequence": [
            err(Some(a), "", "DecryptionInternalError"),
            err(Some(a), "not base64!", "DecryptionInternalError"),
            err(Some(a), &format!("{w0}="), "DecryptionInternalError"),
            err(Some(a), "AAB", "DecryptionInternalError"),
            err(Some(a), &w0[..8], "DecryptionInternalError"),
            err(Some(a), &"A".repeat(MAX_SIGNAL_WIRE_DATA + 4), "DecryptionInternalError"),
            err(Some(a), &sealed_plaintext(a, 7, &[]), "DecryptionInternalError"),
            err(Some(a), &sealed_plaintext(a, 8, &[5, b'a']), "DecryptionInternalError"),
            err(Some(a), &sealed_plaintext(a, 9, b"\x02a b"), "DecryptionInternalError"),
            err(Some(a), &sealed_plaintext(a, 10, b"\x00\xff"), "DecryptionInternalError"),
        ]}),
        json!({"name": "no secret", "key": null, "session_id": SESSION, "sequence": [
            err(Some(a), &w0, "EncryptionSecretMissing"),
        ]}),
    ];

    let keys: Vec<Value> = (0..SECRETS.len())
        .map(|i| {
            let k = base_key(i);
            json!({
                "secret": SECRETS[i],
                "base_key": hex::encode(k.as_bytes()),
                "signal_base_key": hex::encode(signal_base_key_bytes(&k).unwrap()),
            })
        })
        .collect();
    json!({
        "generated_by": "cargo run -p umbra-e2ee --example umbra-signal-vectors > testdata/umbra-signal-vectors.json",
        "wire_type": SIGNAL_WIRE_TYPE,
        "key_label": SIGNAL_KEY_LABEL,
        "suite": SIGNAL_SUITE.id(),
        "max_plaintext": MAX_SIGNAL_PLAINTEXT,
        "max_wire_data": MAX_SIGNAL_WIRE_DATA,
        "session_id": SESSION,
        "keys": keys,
        "signals": signals,
        "receive": receive,
    })
}
