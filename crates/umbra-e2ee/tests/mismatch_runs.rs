//! `testdata/mismatch-runs.json`: runs of failing frames as real browsers handed them over,
//! replayed through the detector. The Web SDK replays the same file (sdk/web/test/mismatch.test.ts).

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use umbra_e2ee::{E2eeEvent, MismatchDetector};

fn event_name(event: &E2eeEvent) -> &'static str {
    match event {
        E2eeEvent::EncryptionSecretMismatch => "EncryptionSecretMismatch",
        E2eeEvent::EncryptionSecretMatch => "EncryptionSecretMatch",
        E2eeEvent::StreamNotEncrypted => "StreamNotEncrypted",
        E2eeEvent::DecryptionInternalError(_) => "DecryptionInternalError",
        _ => "unknown",
    }
}

fn int(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn captured_runs_give_the_verdict_the_sender_deserves() {
    let path = support::testdata().join("mismatch-runs.json");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let runs = file["runs"].as_array().unwrap();
    assert!(runs.len() >= 10);
    for run in runs {
        let name = run["name"].as_str().unwrap();
        let t0 = Instant::now();
        let mut d = MismatchDetector::new();
        let mut events = vec![];
        for (i, f) in run["failures"].as_array().unwrap().iter().enumerate() {
            let ms = Duration::from_millis(int(&f[0]));
            let event = d.on_auth_failure(t0 + ms, int(&f[1]), int(&f[2]), int(&f[3]) as usize);
            events.extend(event.map(|e| (i as u64, event_name(&e))));
        }
        assert_eq!(events, vec![(int(&run["at"]), run["expect"].as_str().unwrap())], "{name}");
    }
}
