//! `testdata/umbra-signal-vectors.json` is what the generator produces today, and every vector
//! holds when read back through the public API as a second implementation would.

mod support;

use std::time::Instant;

use serde_json::Value;
use support::signal_vectors::generate;
use umbra_e2ee::{
    BaseKey, CipherSuite, KeyRing, PlainSignal, SIGNAL_SUITE, SframeKey, SignalError, SignalOpener, SignalSealer,
    signal_base_key_bytes,
};

fn committed() -> Value {
    let path = support::testdata().join("umbra-signal-vectors.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn base_key(v: &Value, i: &Value) -> Option<BaseKey> {
    let i = i.as_u64()? as usize;
    let bytes = hex::decode(v["keys"][i]["base_key"].as_str().unwrap()).unwrap();
    Some(BaseKey::from_bytes(bytes.try_into().unwrap()))
}

fn error_name(e: &SignalError) -> &'static str {
    match e {
        SignalError::InvalidType | SignalError::TooLarge { .. } => panic!("not an error a receiver gives: {e}"),
        other => other.name(),
    }
}

#[test]
fn committed_vectors_match_the_generator() {
    assert!(
        committed() == generate(),
        "testdata/umbra-signal-vectors.json is stale: regenerate it with the command in its `generated_by` field"
    );
}

#[test]
fn signal_base_keys_match_an_independent_hkdf() {
    // Python: hmac.new(prk, b'umbra/e2ee/v1/signal' + b'\x01', sha512) with
    // prk = hmac.new(b'\0' * 64, base_key, sha512), first 32 bytes.
    let reference = [
        "85c7b51237ec87e09c4ffef0590dc022a0175ce837b9733534247f8e3a4ad71e",
        "129881b70aced3bf470c9d1d4ca11131d7d4b838550d9bd2173cb214c817f8f6",
    ];
    let v = committed();
    for (i, expected) in reference.into_iter().enumerate() {
        let base = base_key(&v, &Value::from(i)).unwrap();
        assert_eq!(hex::encode(signal_base_key_bytes(&base).unwrap()), expected);
        assert_eq!(v["keys"][i]["signal_base_key"].as_str().unwrap(), expected);
        // The media key of a KID is not the signal key of the same KID.
        let media = SframeKey::derive(SIGNAL_SUITE, base.as_bytes(), 42).unwrap();
        let signal = SframeKey::derive(SIGNAL_SUITE, &signal_base_key_bytes(&base).unwrap(), 42).unwrap();
        assert_ne!(media.salt(), signal.salt());
    }
}

#[test]
fn sealed_signals_match_and_open() {
    let v = committed();
    let session = v["session_id"].as_str().unwrap();
    let now = Instant::now();
    for s in v["signals"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let base = base_key(&v, &s["key"]).unwrap();
        let sender = s["sender"].as_str().unwrap();
        let kid: u64 = s["kid"].as_str().unwrap().parse().unwrap();
        let ctr: u64 = s["ctr"].as_str().unwrap().parse().unwrap();
        let (ty, data) = (s["signal_type"].as_str().unwrap(), s["data"].as_str().unwrap());
        let wire = SignalSealer::with_kid(&base, sender, kid, ctr).unwrap().seal(session, ty, data).unwrap();
        assert_eq!(wire, s["wire_data"].as_str().unwrap(), "{name}");
        assert!(wire.len() <= v["max_wire_data"].as_u64().unwrap() as usize, "{name}");
        let mut ring = KeyRing::new(CipherSuite::default());
        ring.set_base_key(base, now);
        let got = SignalOpener::new().open(&ring, now, session, Some(sender), &wire).unwrap();
        assert_eq!(got, PlainSignal { signal_type: ty.into(), data: data.into() }, "{name}");
    }
}

#[test]
fn receive_sequences_give_what_they_say() {
    let v = committed();
    let now = Instant::now();
    let mut errors = std::collections::BTreeSet::new();
    for r in v["receive"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let session = r["session_id"].as_str().unwrap();
        let mut ring = KeyRing::new(CipherSuite::default());
        if let Some(k) = base_key(&v, &r["key"]) {
            ring.set_base_key(k, now);
        }
        let mut opener = SignalOpener::new();
        for (i, step) in r["sequence"].as_array().unwrap().iter().enumerate() {
            let got = opener.open(&ring, now, session, step["from"].as_str(), step["wire_data"].as_str().unwrap());
            let expect = &step["expect"];
            match (got, expect["error"].as_str()) {
                (Ok(sig), None) => {
                    assert_eq!(sig.signal_type, expect["signal_type"].as_str().unwrap(), "{name} #{i}");
                    assert_eq!(sig.data, expect["data"].as_str().unwrap(), "{name} #{i}");
                }
                (Err(e), Some(want)) => {
                    assert_eq!(error_name(&e), want, "{name} #{i}: {e}");
                    errors.insert(want);
                }
                (got, want) => panic!("{name} #{i}: got {got:?}, expected {want:?}"),
            }
        }
    }
    assert_eq!(errors.len(), 4, "every receiver error is covered: {errors:?}");
}
