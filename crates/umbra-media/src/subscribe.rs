//! `umbra-media subscribe`.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clap::Args;
use umbra_client::{Event, SubscriberEvent};

use crate::error::MediaCliError;
use crate::files::Y4mWriter;
use crate::target::{Role, Target};

#[derive(Debug, Args, Clone)]
pub struct SubscribeArgs {
    #[command(flatten)]
    pub target: Target,
    /// The stream to receive (default: the first one that appears).
    #[arg(long)]
    pub stream: Option<String>,
    /// Write decoded pictures to this Y4M file.
    #[arg(long)]
    pub y4m_out: Option<PathBuf>,
    /// Print one JSON object per second instead of a line for people.
    #[arg(long)]
    pub json: bool,
}

/// What the once-a-second line reports.
#[derive(Default)]
struct Tally {
    decoded: u64,
    last_decoded: u64,
    last_bytes: u64,
}

pub fn run(args: SubscribeArgs) -> Result<(), MediaCliError> {
    let (mut session, events, joined) = args.target.connect(Role::Subscriber)?;
    let mut out = match &args.y4m_out {
        Some(p) => {
            Some(Y4mWriter::new(p.clone(), BufWriter::new(File::create(p).map_err(|e| MediaCliError::file(p, e))?)))
        }
        None => None,
    };
    let end = args.target.deadline();
    let mut sub = None;
    let mut tally = Tally::default();
    let mut state = "waiting";
    let mut last_print = Instant::now();
    while end.is_none_or(|e| Instant::now() < e) {
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Connected { e2ee, .. }) => {
                state = if e2ee { "encrypted" } else { "not encrypted" };
                if !args.json {
                    println!("connected to session {}", joined.session_id);
                }
            }
            Ok(Event::StreamCreated(s))
                if sub.is_none() && args.stream.as_ref().is_none_or(|want| *want == s.stream_id) =>
            {
                sub = Some(session.subscribe(&s.stream_id)?);
                if !args.json {
                    println!("subscribing to stream {} ({})", s.stream_id, s.name);
                }
            }
            Ok(Event::Subscriber { event, .. }) => match event {
                SubscriberEvent::VideoFrame(f) => {
                    tally.decoded += 1;
                    if let Some(w) = &mut out {
                        w.write(&f)?;
                    }
                }
                SubscriberEvent::VideoCodec(c) if !args.json => println!("video codec: {c}"),
                SubscriberEvent::EncryptionSecretMismatch => state = "SECRET MISMATCH",
                SubscriberEvent::EncryptionSecretMatch => state = "encrypted",
                SubscriberEvent::Error(e) => eprintln!("subscriber error: {e}"),
                _ => {}
            },
            Ok(Event::Error(e)) => eprintln!("error: {e}"),
            Ok(Event::StreamDestroyed { stream, .. })
                if args.stream.as_deref().is_none_or(|s| s == stream.stream_id) =>
            {
                eprintln!("stream {} ended", stream.stream_id);
            }
            Ok(Event::Disconnected { reason }) => return Err(MediaCliError::Disconnected(reason)),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            let secs = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            let stats = sub.map(|s| session.subscriber_stats(s)).unwrap_or_default();
            let fps = (tally.decoded - tally.last_decoded) as f64 / secs;
            let kbps = stats.bytes_received.saturating_sub(tally.last_bytes) as f64 * 8.0 / 1000.0 / secs;
            (tally.last_decoded, tally.last_bytes) = (tally.decoded, stats.bytes_received);
            if args.json {
                let line = serde_json::json!({"frames_decoded": tally.decoded, "fps": fps, "kbps": kbps, "encryption": state,
                    "audio_frames_decoded": stats.audio_frames_decoded, "decrypt_failures": stats.decrypt_failures});
                println!("{line}");
            } else {
                println!("frames decoded {:>6} ({fps:4.1} fps)  {kbps:7.1} kb/s  encryption: {state}", tally.decoded);
            }
        }
    }
    if let Some(w) = out {
        w.finish()?;
    }
    session.disconnect();
    Ok(())
}
