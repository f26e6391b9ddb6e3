//! The late-joiner scenario, the same for every SDK: a relayed session filled by a [`Crowd`]
//! (more connections and streams than one page of the session's description holds), then a
//! joiner that must report exactly every connection and stream, and then every later change:
//! a new connection, an unpublished stream, a stream property, and a forced mute of a stream
//! the joiner publishes.
//!
//! The joiner is the Rust SDK (tests/late_joiner.rs) or a program that prints one line per
//! callback (examples/c/late-joiner.c, driven by examples/late_joiner_check.rs): both turn what
//! they report into [`Seen`].

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use umbra_protocol::{PropertyChange, PropertyChanged, ServerMessage};

use super::crowd::Crowd;
use super::rest::AppServer;

/// What a joiner reported, in the order it did.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Connected,
    ConnectionCreated(String),
    ConnectionDropped(String),
    StreamReceived(String),
    /// The stream, and why it went if the SDK says (the C API does not).
    StreamDropped(String, Option<String>),
    HasAudio(String, bool),
    HasVideo(String, bool),
    /// The stream of the joiner's own publisher.
    PublisherStream(String),
    /// The joiner's publisher was forced to mute; whether it still publishes audio after.
    MuteForced {
        publish_audio: bool,
    },
    Error(String),
    Disconnected,
    /// A line of an external joiner that is none of the above (shown, not checked).
    Other(String),
}

impl Seen {
    /// Parses a line of an external joiner (see examples/c/late-joiner.c).
    pub fn parse(line: &str) -> Seen {
        let mut w = line.split_whitespace();
        let (kind, a, b) = (w.next().unwrap_or(""), w.next().map(str::to_string), w.next());
        let flag = |b: Option<&str>| b == Some("1");
        match (kind, a) {
            ("connected", _) => Seen::Connected,
            ("disconnected", _) => Seen::Disconnected,
            ("connection_created", Some(id)) => Seen::ConnectionCreated(id),
            ("connection_dropped", Some(id)) => Seen::ConnectionDropped(id),
            ("stream_received", Some(id)) => Seen::StreamReceived(id),
            ("stream_dropped", Some(id)) => Seen::StreamDropped(id, None),
            ("stream_has_audio_changed", Some(id)) => Seen::HasAudio(id, flag(b)),
            ("stream_has_video_changed", Some(id)) => Seen::HasVideo(id, flag(b)),
            ("publisher_stream", Some(id)) => Seen::PublisherStream(id),
            ("mute_forced", Some(audio)) => Seen::MuteForced { publish_audio: audio == "publish_audio=1" },
            ("error", _) => Seen::Error(line.to_string()),
            _ => Seen::Other(line.to_string()),
        }
    }
}

/// A late joiner under test.
pub trait Joiner {
    /// The next report, or `None` if there was none within `timeout`.
    fn next(&mut self, timeout: Duration) -> Option<Seen>;
    /// Publishes one stream (audio and video).
    fn publish(&mut self) -> Result<(), String>;
    /// Leaves and cleans up; `Err` if that did not go cleanly.
    fn finish(self: Box<Self>) -> Result<(), String>;
}

/// How big, and how long to wait for each step (a joiner under valgrind is slow).
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub streams: usize,
    pub patience: Duration,
}

/// What the scenario measured.
#[derive(Debug)]
pub struct Outcome {
    pub connections_reported: usize,
    pub streams_reported: usize,
    /// From starting the joiner to its having reported the whole session.
    pub initial_state: Duration,
}

/// Everything a joiner reported, and counts to find duplicates.
#[derive(Default)]
struct Log {
    seen: Vec<Seen>,
    connected: bool,
    created: HashMap<String, usize>,
    received: HashMap<String, usize>,
    dropped: HashMap<String, usize>,
}

impl Log {
    fn add(&mut self, s: Seen) -> Result<(), String> {
        match &s {
            Seen::Connected => self.connected = true,
            Seen::ConnectionCreated(id) => *self.created.entry(id.clone()).or_default() += 1,
            Seen::StreamReceived(id) => *self.received.entry(id.clone()).or_default() += 1,
            Seen::StreamDropped(id, _) => *self.dropped.entry(id.clone()).or_default() += 1,
            Seen::Error(e) => return Err(format!("the joiner reported an error: {e}")),
            Seen::Disconnected => return Err("the joiner was disconnected".into()),
            Seen::Other(line) => eprintln!("joiner: {line}"),
            _ => {}
        }
        self.seen.push(s);
        Ok(())
    }
}

struct Driver<'a> {
    joiner: Box<dyn Joiner + 'a>,
    log: Log,
    patience: Duration,
}

impl Driver<'_> {
    /// Takes reports until `done` holds, for at most the plan's patience.
    fn until(&mut self, what: &str, done: impl Fn(&Log) -> bool) -> Result<(), String> {
        let end = Instant::now() + self.patience;
        while !done(&self.log) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(format!("timed out waiting for {what}"));
            }
            if let Some(s) = self.joiner.next(left.min(Duration::from_millis(200))) {
                self.log.add(s)?;
            }
        }
        Ok(())
    }

    /// Takes what arrives during `d` (to catch duplicates that would come after the last
    /// expected report).
    fn settle(&mut self, d: Duration) -> Result<(), String> {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            if let Some(s) = self.joiner.next(left) {
                self.log.add(s)?;
            }
        }
        Ok(())
    }
}

fn exactly_once(what: &str, counts: &HashMap<String, usize>, expected: &BTreeSet<String>) -> Result<(), String> {
    let got: BTreeSet<String> = counts.keys().cloned().collect();
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(expected).collect();
    let twice: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    if missing.is_empty() && extra.is_empty() && twice.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what}: expected {} ids, got {}; {} missing (e.g. {:?}), {} unexpected (e.g. {:?}), {} more than once (e.g. {:?})",
        expected.len(),
        got.len(),
        missing.len(),
        missing.first(),
        extra.len(),
        extra.first(),
        twice.len(),
        twice.first()
    ))
}

/// Runs the scenario. `start` starts the joiner given the server URL, API key, session id and
/// a client token.
pub fn run<'a>(
    app: &AppServer,
    plan: Plan,
    start: impl FnOnce(&str, &str, &str, &str) -> Result<Box<dyn Joiner + 'a>, String>,
) -> Result<Outcome, String> {
    let session_id = app.create_session(true)?;
    let minter = (app.clone(), session_id.clone());
    let mint = move |i: usize| minter.0.token(&minter.1, "publisher", &format!("crowd {i}"));
    let crowd = Crowd::start(&app.addr, mint, plan.connections, plan.streams)?;
    let connections: BTreeSet<String> = crowd.connection_ids().into_iter().collect();
    let streams: BTreeSet<String> = crowd.stream_ids().into_iter().collect();
    assert_eq!((connections.len(), streams.len()), (plan.connections, plan.streams));

    let started = Instant::now();
    let joiner = start(&app.url(), &app.api_key, &session_id, &app.token(&session_id, "publisher", "late joiner"))?;
    let mut d = Driver { joiner, log: Log::default(), patience: plan.patience };

    // 1. The session as it was: every connection and every stream, each once.
    d.until("the whole session", |l| {
        l.connected
            && connections.iter().all(|c| l.created.contains_key(c))
            && streams.iter().all(|s| l.received.contains_key(s))
    })?;
    let initial_state = started.elapsed();
    d.settle(Duration::from_millis(500))?;
    exactly_once("connections of the session", &d.log.created, &connections)?;
    exactly_once("streams of the session", &d.log.received, &streams)?;

    // 2. Later changes, each reported once.
    let newcomer = crowd.add_connection()?;
    d.until("connection_created of the newcomer", |l| l.created.contains_key(&newcomer))?;
    let unpublished = crowd.unpublish(1)?;
    d.until("stream_destroyed of the unpublished stream", |l| l.dropped.contains_key(&unpublished))?;
    if let Some(Seen::StreamDropped(_, Some(reason))) =
        d.log.seen.iter().find(|s| matches!(s, Seen::StreamDropped(id, _) if *id == unpublished))
        && reason != "unpublished"
    {
        return Err(format!("stream {unpublished} dropped for {reason}, not unpublished"));
    }
    let changed = crowd.set_property(2, PropertyChange::HasVideo(false))?;
    d.until("the stream's video turned off", |l| l.seen.contains(&Seen::HasVideo(changed.clone(), false)))?;

    // 3. A forced mute of the joiner's own stream: reported to its publisher, and the session
    //    sees its audio go off (the SDK really stopped sending it).
    d.joiner.publish()?;
    d.until("the joiner's stream", |l| l.seen.iter().any(|s| matches!(s, Seen::PublisherStream(_))))?;
    let own = d
        .log
        .seen
        .iter()
        .find_map(|s| match s {
            Seen::PublisherStream(id) => Some(id.clone()),
            _ => None,
        })
        .expect("just seen");
    crowd.observer_sees(
        "the joiner's stream_created",
        |m| matches!(m, ServerMessage::StreamCreated { stream } if stream.stream_id == own),
    )?;
    app.mute_stream(&session_id, &own)?;
    d.until("mute_forced", |l| l.seen.iter().any(|s| matches!(s, Seen::MuteForced { .. })))?;
    if d.log.seen.contains(&Seen::MuteForced { publish_audio: true }) {
        return Err("the publisher still publishes audio after a forced mute".into());
    }
    crowd.observer_sees("the joiner's stream without audio", |m| {
        matches!(m, ServerMessage::StreamPropertyChanged { stream_id, change: PropertyChanged::HasAudio { new_value: false, .. } } if *stream_id == own)
    })?;

    // 4. Nothing reported twice along the way.
    d.settle(Duration::from_millis(300))?;
    let mut all_connections = connections.clone();
    all_connections.insert(newcomer);
    exactly_once("connections", &d.log.created, &all_connections)?;
    let mut all_streams = streams.clone();
    if d.log.received.contains_key(&own) {
        // An SDK may report its own stream among the session's (the C API does).
        all_streams.insert(own);
    }
    exactly_once("streams", &d.log.received, &all_streams)?;
    exactly_once("dropped streams", &d.log.dropped, &BTreeSet::from([unpublished]))?;
    let unparsed = crowd.unparsed();
    if !unparsed.is_empty() {
        return Err(format!("{} server messages did not parse as ServerFrame, e.g. {}", unparsed.len(), unparsed[0]));
    }
    let outcome =
        Outcome { connections_reported: d.log.created.len(), streams_reported: d.log.received.len(), initial_state };
    d.joiner.finish()?;
    drop(crowd);
    Ok(outcome)
}

/// A joiner that is another program: it gets `--url --api-key --session-id --token` appended to
/// its command line, prints one line per callback on stdout (see [`Seen::parse`]), and reads
/// `publish` and `quit` lines on stdin.
pub struct ChildJoiner {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    patience: Duration,
}

impl ChildJoiner {
    pub fn spawn(
        command: &[String],
        url: &str,
        api_key: &str,
        session_id: &str,
        token: &str,
        patience: Duration,
    ) -> Result<Self, String> {
        let (program, args) = command.split_first().ok_or("no joiner command")?;
        let mut child = Command::new(program)
            .args(args)
            .args(["--url", url, "--api-key", api_key, "--session-id", session_id, "--token", token])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {program}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self { stdin: child.stdin.take(), child, lines, patience })
    }

    fn say(&mut self, line: &str) -> Result<(), String> {
        let stdin = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(stdin, "{line}").and_then(|_| stdin.flush()).map_err(|e| format!("telling the joiner {line}: {e}"))
    }
}

impl Joiner for ChildJoiner {
    fn next(&mut self, timeout: Duration) -> Option<Seen> {
        match self.lines.recv_timeout(timeout) {
            Ok(line) => Some(Seen::parse(&line)),
            Err(RecvTimeoutError::Timeout) => None,
            // It exited: say so once, then nothing more comes.
            Err(RecvTimeoutError::Disconnected) => {
                std::thread::sleep(timeout);
                match self.child.try_wait() {
                    Ok(Some(status)) => Some(Seen::Error(format!("the joiner exited early: {status}"))),
                    _ => None,
                }
            }
        }
    }

    fn publish(&mut self) -> Result<(), String> {
        self.say("publish")
    }

    fn finish(mut self: Box<Self>) -> Result<(), String> {
        self.say("quit")?;
        drop(self.stdin.take());
        let end = Instant::now() + self.patience;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) if status.success() => return Ok(()),
                Ok(Some(status)) => return Err(format!("the joiner exited with {status}")),
                Ok(None) if Instant::now() < end => std::thread::sleep(Duration::from_millis(50)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return Err("the joiner did not exit after quit".into());
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

impl Drop for ChildJoiner {
    fn drop(&mut self) {
        // After `finish` it has exited; otherwise (a failed run) it must not outlive the check.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
