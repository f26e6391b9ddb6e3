//! TEST ONLY: a publisher that declares end-to-end encryption but sends plain VP8/Opus (the
//! test pattern and tone), for other SDKs' end-to-end tests of "stream not encrypted" (the C
//! SDK's scenario in examples/c/run-tests.sh). Built only with the test feature:
//!
//! ```sh
//! cargo build -p umbra-client --features testing-plaintext-publisher --example plaintext-publisher
//! plaintext-publisher --url URL --api-key KEY --session-id ID --token TOKEN --secret SECRET [--seconds 30]
//! ```
//!
//! Publishes for `--seconds` (or until a `c-sdk-done` signal), then exits 0; exits 1 if it could
//! not connect or publish. The secret only satisfies the session's E2EE precondition: no frame
//! is encrypted with it.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use umbra_client::{Event, PublisherEvent, PublisherSettings, Session, SessionConfig};

fn usage() -> ExitCode {
    eprintln!(
        "usage: plaintext-publisher --url URL --api-key KEY --session-id ID --token TOKEN --secret SECRET [--seconds N]"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mut url, mut key, mut session_id, mut token, mut secret) =
        (String::new(), String::new(), String::new(), String::new(), String::new());
    let mut seconds = 30u64;
    for pair in args.chunks(2) {
        let [k, v] = pair else { return usage() };
        match k.as_str() {
            "--url" => url = v.clone(),
            "--api-key" => key = v.clone(),
            "--session-id" => session_id = v.clone(),
            "--token" => token = v.clone(),
            "--secret" => secret = v.clone(),
            "--seconds" => match v.parse() {
                Ok(n) => seconds = n,
                Err(_) => return usage(),
            },
            _ => return usage(),
        }
    }
    if [&url, &key, &session_id, &token, &secret].iter().any(|s| s.is_empty()) {
        return usage();
    }
    let mut session = Session::new(&key, &session_id, SessionConfig { server_url: url, ..SessionConfig::default() });
    let Some(events) = session.events() else { return ExitCode::FAILURE };
    if let Err(e) = session.set_encryption_secret(&secret).and_then(|()| session.connect(&token)) {
        eprintln!("plaintext-publisher: {e}");
        return ExitCode::FAILURE;
    }
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut ok = false;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        let Ok(event) = events.recv_timeout(left) else { break };
        match event {
            Event::Connected { e2ee, cipher_suite, .. } => {
                println!("plaintext-publisher: connected (e2ee {e2ee}, cipher suite {cipher_suite:?})");
                let settings = PublisherSettings::with_pattern("plaintext", 320, 240, 30);
                if let Err(e) = session.publish_plaintext_declaring_e2ee(settings) {
                    eprintln!("plaintext-publisher: publish: {e}");
                    return ExitCode::FAILURE;
                }
            }
            Event::Publisher { event: PublisherEvent::StreamCreated { stream_id }, .. } => {
                println!("plaintext-publisher: publishing {stream_id}, declared encrypted, sent in the clear");
                ok = true;
            }
            Event::Publisher { event: PublisherEvent::Error(e), .. } | Event::Error(e) => {
                eprintln!("plaintext-publisher: error: {e}");
            }
            Event::Signal { signal_type, .. } if signal_type == "c-sdk-done" => break,
            Event::Disconnected { reason } => {
                eprintln!("plaintext-publisher: disconnected: {reason}");
                break;
            }
            _ => {}
        }
    }
    session.disconnect();
    if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
