//! Runs the late-joiner scenario (tests/support/late_joiner.rs) against a running `umbra serve`
//! with an external joiner program, e.g. the C SDK's examples/c/late-joiner:
//!
//! ```sh
//! late-joiner-check --server 127.0.0.1:PORT --api-key KEY --api-secret SECRET \
//!     [--connections 150] [--streams 120] [--patience-secs 30] -- PROGRAM ARGS...
//! ```
//!
//! It fills a new relayed session with protocol-level participants, starts
//! `PROGRAM ARGS... --url URL --api-key KEY --session-id ID --token TOKEN`, and checks what the
//! program prints (one line per callback). Exits 0 when every check passed, 1 with the reason
//! otherwise. Loopback only; every wait is bounded by the patience.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use support::late_joiner::{self, ChildJoiner, Joiner, Plan};
use support::rest::AppServer;

fn usage() -> ExitCode {
    eprintln!(
        "usage: late-joiner-check --server HOST:PORT --api-key KEY --api-secret SECRET \
         [--connections N] [--streams N] [--patience-secs S] -- PROGRAM ARGS..."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(split) = args.iter().position(|a| a == "--") else { return usage() };
    let (options, command) = (&args[..split], args[split + 1..].to_vec());
    let mut app = AppServer { addr: String::new(), api_key: String::new(), api_secret: String::new() };
    let mut plan = Plan { connections: 150, streams: 120, patience: Duration::from_secs(30) };
    for pair in options.chunks(2) {
        let [k, v] = pair else { return usage() };
        let number = || v.parse::<u64>().ok();
        match (k.as_str(), number()) {
            ("--server", _) => app.addr = v.clone(),
            ("--api-key", _) => app.api_key = v.clone(),
            ("--api-secret", _) => app.api_secret = v.clone(),
            ("--connections", Some(n)) => plan.connections = n as usize,
            ("--streams", Some(n)) => plan.streams = n as usize,
            ("--patience-secs", Some(n)) => plan.patience = Duration::from_secs(n),
            _ => return usage(),
        }
    }
    if app.addr.is_empty() || app.api_key.is_empty() || app.api_secret.is_empty() || command.is_empty() {
        return usage();
    }
    let patience = plan.patience;
    let result = late_joiner::run(&app, plan, |url, api_key, session_id, token| {
        let joiner = ChildJoiner::spawn(&command, url, api_key, session_id, token, patience)?;
        Ok(Box::new(joiner) as Box<dyn Joiner>)
    });
    match result {
        Ok(outcome) => {
            println!(
                "late joiner: {} connections and {} streams reported exactly once, the whole session {:.2} s after \
                 starting it; connection_created, stream_destroyed, stream_has_video_changed and mute_forced followed",
                outcome.connections_reported,
                outcome.streams_reported,
                outcome.initial_state.as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("late joiner check FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
