//! Dynacast in a grid: what paused simulcast layers save when a viewer shows every stream as a
//! small tile.
//!
//! ```sh
//! cargo bench -p umbra-client --bench grid                 # 9 tiles of 640x360 at 15 fps
//! UMBRA_GRID_TILES=4 UMBRA_GRID_SECS=8 cargo bench -p umbra-client --bench grid
//! ```
//!
//! A real `umbra serve` and one end-to-end encrypted session: `UMBRA_GRID_TILES` native
//! publishers (VP8 simulcast: 640x360, 320x180 and 160x90 layers of a test pattern, SFrame suite
//! 6) and one viewer. Each phase measures what the publishers' encoders produce (all layers,
//! summed over publishers) and what the viewer receives, over `UMBRA_GRID_SECS`:
//!
//! 1. **nobody watches yet**: before the router has ever had a subscriber it names no layer, so
//!    every layer is encoded: what simulcast costs without dynacast;
//! 2. **grid**: the viewer subscribes to every stream with a preferred resolution of 160x90
//!    (`set_preferred_resolution`): the router forwards the smallest layer and tells each
//!    publisher (`layers_wanted`) to pause the two larger ones;
//! 3. **full size**: the viewer clears its preferences: the largest layer of each stream.
//!
//! Prints a table and the saving of phase 2 against phase 1; the figures go to
//! docs/performance.md ("Simulcast and layer choice"). Exits 1 if a phase has no media.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use support::rest::AppServer;
use support::server::Server;
use umbra_client::{Event, PublisherId, PublisherSettings, Session, SessionConfig, SubscriberId};

const SECRET: &str = "grid bench shared secret";

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

struct Member {
    session: Session,
    events: Receiver<Event>,
}

impl Member {
    fn join(app: &AppServer, session_id: &str) -> Member {
        let config = SessionConfig { server_url: app.url(), ..SessionConfig::default() };
        let mut session = Session::new(&app.api_key, session_id, config);
        let events = session.events().expect("the event receiver");
        session.set_encryption_secret(SECRET).expect("a valid secret");
        session.connect(&app.token(session_id, "publisher", "")).expect("connect");
        let m = Member { session, events };
        m.wait(Duration::from_secs(20), |e| matches!(e, Event::Connected { .. })).expect("connected");
        m
    }

    /// The first event `pred` accepts within `within`; the others are dropped.
    fn wait(&self, within: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + within;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.events.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(e) if pred(&e) => return Some(e),
                Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(_) => return None,
            }
        }
        None
    }
}

/// Encoder output of every publisher, and how many layers are encoding.
fn encoded(publishers: &[(Member, PublisherId)]) -> (u64, usize) {
    let mut bytes = 0;
    let mut active = 0;
    for (m, id) in publishers {
        for l in m.session.publisher_stats(*id).layers {
            bytes += l.bytes_encoded;
            active += usize::from(!l.paused);
        }
    }
    (bytes, active)
}

fn received(viewer: &Member, subs: &[SubscriberId]) -> (u64, u64) {
    subs.iter()
        .map(|s| viewer.session.subscriber_stats(*s))
        .fold((0, 0), |(b, f), s| (b + s.bytes_received, f + s.video_frames_decoded))
}

struct Phase {
    name: &'static str,
    encoded_kbps: f64,
    layers_encoding: usize,
    received_kbps: f64,
    decoded_fps: f64,
}

fn measure(
    name: &'static str,
    publishers: &[(Member, PublisherId)],
    viewer: &Member,
    subs: &[SubscriberId],
    secs: u64,
) -> Phase {
    let (e0, _) = encoded(publishers);
    let (r0, f0) = received(viewer, subs);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let dt = t0.elapsed().as_secs_f64();
    let (e1, layers_encoding) = encoded(publishers);
    let (r1, f1) = received(viewer, subs);
    Phase {
        name,
        encoded_kbps: (e1 - e0) as f64 * 8.0 / dt / 1000.0,
        layers_encoding,
        received_kbps: (r1 - r0) as f64 * 8.0 / dt / 1000.0,
        decoded_fps: (f1 - f0) as f64 / dt,
    }
}

fn main() -> ExitCode {
    let tiles = env_u64("UMBRA_GRID_TILES", 9) as usize;
    let secs = env_u64("UMBRA_GRID_SECS", 5);
    let (width, height, fps) = (640, 360, 15);
    let server = Server::start(&[]);
    let app = server.e2ee_project("grid");
    let session_id = app.create_e2ee_session().expect("an e2ee session");
    eprintln!("grid: {tiles} publishers of {width}x{height} at {fps} fps, {secs} s per phase");

    let publishers: Vec<(Member, PublisherId)> = (0..tiles)
        .map(|i| {
            let m = Member::join(&app, &session_id);
            let settings = PublisherSettings::with_pattern(&format!("tile-{i}"), width, height, fps);
            let id = m.session.publish(settings).expect("publish");
            (m, id)
        })
        .collect();
    let viewer = Member::join(&app, &session_id);
    let mut streams = Vec::new();
    while streams.len() < tiles {
        match viewer.wait(Duration::from_secs(30), |e| matches!(e, Event::StreamCreated(_))) {
            Some(Event::StreamCreated(s)) => streams.push(s.stream_id),
            _ => {
                eprintln!("grid: only {} of {tiles} streams appeared", streams.len());
                return ExitCode::FAILURE;
            }
        }
    }
    // Encoders settle (rate control, first key frames) before anything is measured.
    std::thread::sleep(Duration::from_secs(3));
    let mut phases = vec![measure("nobody watches yet (every layer)", &publishers, &viewer, &[], secs)];

    let subs: Vec<SubscriberId> = streams
        .iter()
        .map(|s| {
            let id = viewer.session.subscribe(s).expect("subscribe");
            viewer.session.set_preferred_resolution(id, Some((160, 90))).expect("a preference");
            id
        })
        .collect();
    // Unwatched layers leave the wanted set after the router's 2 s hold.
    std::thread::sleep(Duration::from_secs(5));
    phases.push(measure("grid of 160x90 tiles", &publishers, &viewer, &subs, secs));

    for s in &subs {
        viewer.session.set_preferred_resolution(*s, None).expect("clear the preference");
    }
    std::thread::sleep(Duration::from_secs(5));
    phases.push(measure("full size", &publishers, &viewer, &subs, secs));

    println!(
        "{:<36} {:>16} {:>16} {:>16} {:>12}",
        "phase", "encoded kb/s", "layers encoding", "viewer kb/s", "viewer fps"
    );
    for p in &phases {
        println!(
            "{:<36} {:>16.0} {:>13}/{:<2} {:>16.0} {:>12.1}",
            p.name,
            p.encoded_kbps,
            p.layers_encoding,
            3 * tiles,
            p.received_kbps,
            p.decoded_fps
        );
    }
    let saved = 1.0 - phases[1].encoded_kbps / phases[0].encoded_kbps.max(1.0);
    println!(
        "paused layers save {:.0} % of the publishers' encoded bitrate in the grid ({:.0} -> {:.0} kb/s over {tiles} publishers)",
        saved * 100.0,
        phases[0].encoded_kbps,
        phases[1].encoded_kbps
    );
    let media = phases.iter().all(|p| p.encoded_kbps > 0.0) && phases[1..].iter().all(|p| p.decoded_fps > 0.0);
    for (mut m, _) in publishers {
        m.session.disconnect();
    }
    let mut viewer = viewer;
    viewer.session.disconnect();
    if media { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
