//! `umbra publish` and `umbra subscribe`: the native SDK on the command line, for people trying
//! Umbra out and for scripted checks.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use umbra_client::media::pattern::Tone;
use umbra_client::media::{VideoFrame, vp8::Vp8Decoder};
use umbra_client::{
    EncodedVideoSource, Event, PublisherEvent, PublisherSettings, Session, SessionConfig, SubscriberEvent, TestPatternCapturer, ToneCapturer,
    VideoCapturer, VideoSource,
};

use crate::store::Store;

/// How the command finds its session and token.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The server's URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "UMBRA_URL")]
    pub url: String,
    /// Project (API key or name) in the local data directory: the command creates a routed
    /// session (end-to-end encrypted when the project has the add-on) unless --session-id is
    /// given, and makes its own token. Handy next to `umbra serve` on the same machine.
    #[arg(long, conflicts_with_all = ["api_key", "token"])]
    pub project: Option<String>,
    /// The session to join.
    #[arg(long)]
    pub session_id: Option<String>,
    /// API key of the session's project (with --token).
    #[arg(long, requires = "token")]
    pub api_key: Option<String>,
    /// A client token made by your app server (with --api-key and --session-id).
    #[arg(long, requires = "session_id")]
    pub token: Option<String>,
    /// The shared end-to-end encryption secret (8 to 256 characters).
    #[arg(long, env = "UMBRA_SECRET")]
    pub secret: Option<String>,
    /// Stop after this many seconds (default: run until interrupted).
    #[arg(long)]
    pub duration: Option<u64>,
}

#[derive(Debug, Args, Clone)]
pub struct PublishArgs {
    #[command(flatten)]
    pub target: Target,
    /// Video size of the test pattern, WIDTHxHEIGHT.
    #[arg(long, default_value = "640x480")]
    pub size: String,
    #[arg(long, default_value_t = 30)]
    pub fps: u32,
    /// Video bitrate in kbit/s.
    #[arg(long, default_value_t = 1200)]
    pub bitrate: u32,
    /// Send the pictures of a Y4M (I420) file instead of the test pattern, looping.
    #[arg(long, conflicts_with = "ivf")]
    pub y4m: Option<PathBuf>,
    /// Send the VP8 frames of an IVF file as they are (no re-encoding), looping.
    #[arg(long)]
    pub ivf: Option<PathBuf>,
    /// Publish video only.
    #[arg(long)]
    pub no_audio: bool,
    /// Stream name others see.
    #[arg(long, default_value = "umbra publish")]
    pub name: String,
}

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

#[derive(Debug, thiserror::Error)]
pub enum MediaCliError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Client(#[from] umbra_client::ClientError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("cannot create a session: {0}")]
    SessionCreate(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("disconnected: {0}")]
    Disconnected(String),
}

struct Resolved {
    api_key: String,
    session_id: String,
    token: String,
}

/// Finds or makes the session and the token.
fn resolve(t: &Target, data_dir: &Path) -> Result<Resolved, MediaCliError> {
    if let (Some(api_key), Some(token), Some(session_id)) = (&t.api_key, &t.token, &t.session_id) {
        return Ok(Resolved { api_key: api_key.clone(), session_id: session_id.clone(), token: token.clone() });
    }
    let Some(project) = &t.project else {
        return Err(MediaCliError::Usage("give --project NAME (next to a local server), or --api-key, --session-id and --token".into()));
    };
    let store = crate::store::SqliteStore::open_dir(data_dir)?;
    let p = store
        .projects()?
        .into_iter()
        .find(|p| p.api_key == *project || p.name == *project)
        .ok_or_else(|| MediaCliError::Usage(format!("no project {project:?} in {}", data_dir.display())))?;
    let session_id = match &t.session_id {
        Some(s) => s.clone(),
        None => create_session(&t.url, &p.api_key, &p.secret, p.e2ee_enabled)?,
    };
    let now = crate::clock::now_secs();
    let token = crate::token::sign_jwt(&p.api_key, &p.secret, &session_id, crate::model::Role::Moderator, now + 86_400, None);
    Ok(Resolved { api_key: p.api_key, session_id, token })
}

/// `POST /session/create` as a server SDK would send it.
fn create_session(url: &str, api_key: &str, api_secret: &str, e2ee: bool) -> Result<String, MediaCliError> {
    let host = url.strip_prefix("http://").ok_or_else(|| MediaCliError::Usage(format!("--url {url} must start with http://")))?;
    let host = host.trim_end_matches('/');
    let now = crate::clock::now_secs();
    let auth = crate::jwt::sign_hs256(
        &serde_json::json!({"iss": api_key, "ist": "project", "iat": now, "exp": now + 180}),
        api_secret.as_bytes(),
    );
    let body = format!("p2p.preference=disabled&e2ee={e2ee}");
    let mut stream = TcpStream::connect(host).map_err(|e| MediaCliError::SessionCreate(format!("{host}: {e}")))?;
    stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        stream,
        "POST /session/create HTTP/1.1\r\nHost: {host}\r\nX-OPENTOK-AUTH: {auth}\r\nContent-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .map_err(|e| MediaCliError::SessionCreate(e.to_string()))?;
    let mut resp = String::new();
    stream.read_to_string(&mut resp).map_err(|e| MediaCliError::SessionCreate(e.to_string()))?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    if !head.starts_with("HTTP/1.1 200") {
        return Err(MediaCliError::SessionCreate(format!("{} {}", head.lines().next().unwrap_or_default(), body.trim())));
    }
    let v: serde_json::Value = serde_json::from_str(body.trim()).map_err(|e| MediaCliError::SessionCreate(format!("bad response: {e}")))?;
    v[0]["session_id"].as_str().map(str::to_string).ok_or_else(|| MediaCliError::SessionCreate(format!("no session_id in {v}")))
}

fn connect(t: &Target, data_dir: &Path) -> Result<(Session, std::sync::mpsc::Receiver<Event>, Resolved), MediaCliError> {
    let r = resolve(t, data_dir)?;
    let mut session = Session::new(&r.api_key, &r.session_id, SessionConfig { server_url: t.url.clone(), ..Default::default() });
    let events = session.events().expect("fresh session");
    if let Some(secret) = &t.secret {
        session.set_encryption_secret(secret)?;
    }
    session.connect(&r.token)?;
    Ok((session, events, r))
}

fn parse_size(s: &str) -> Result<(u32, u32), MediaCliError> {
    let bad = || MediaCliError::Usage(format!("--size {s:?}: expected WIDTHxHEIGHT with even numbers, e.g. 640x480"));
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w < 64 || h < 16 || w % 2 == 1 || h % 2 == 1 || w > 4096 || h > 4096 {
        return Err(bad());
    }
    Ok((w, h))
}

pub fn publish(args: PublishArgs, data_dir: &Path) -> Result<(), MediaCliError> {
    let video = match (&args.y4m, &args.ivf) {
        (Some(path), _) => VideoSource::Raw(Box::new(Y4mReader::open(path, args.fps)?)),
        (_, Some(path)) => VideoSource::Encoded(Box::new(IvfReader::open(path, args.fps)?)),
        _ => {
            let (w, h) = parse_size(&args.size)?;
            VideoSource::Raw(Box::new(TestPatternCapturer::new(w, h, args.fps)))
        }
    };
    let (mut session, events, r) = connect(&args.target, data_dir)?;
    let mut settings = Some(PublisherSettings {
        name: args.name.clone(),
        video: Some(video),
        audio: (!args.no_audio).then(|| Box::new(ToneCapturer(Tone::new(440.0))) as _),
        video_bitrate_kbps: args.bitrate,
        audio_bitrate_bps: 32_000,
    });
    let end = args.target.duration.map(|d| Instant::now() + Duration::from_secs(d));
    loop {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        match events.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Connected { e2ee, .. }) => {
                println!("connected to session {} ({})", r.session_id, if e2ee { "end-to-end encrypted" } else { "not encrypted" });
                if let Some(s) = settings.take() {
                    session.publish(s)?;
                }
            }
            Ok(Event::Publisher { event: PublisherEvent::StreamCreated { stream_id }, .. }) => {
                println!("publishing stream {stream_id}");
                let token_hint = match &args.target.project {
                    Some(p) => format!("$(umbra token --project {p} --session-id {})", r.session_id),
                    None => "<token>".into(),
                };
                println!(
                    "subscribe with: umbra subscribe --api-key {} --session-id {} --token {token_hint} --secret <secret>",
                    r.api_key, r.session_id
                );
            }
            Ok(Event::Publisher { event: PublisherEvent::MediaConnected, .. }) => println!("media flowing"),
            Ok(Event::Publisher { event: PublisherEvent::Error(e), .. }) | Ok(Event::Error(e)) => eprintln!("error: {e}"),
            Ok(Event::Disconnected { reason }) => return Err(MediaCliError::Disconnected(reason)),
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    session.disconnect();
    Ok(())
}

pub fn subscribe(args: SubscribeArgs, data_dir: &Path) -> Result<(), MediaCliError> {
    let (mut session, events, r) = connect(&args.target, data_dir)?;
    let mut out = match &args.y4m_out {
        Some(p) => Some((p.clone(), BufWriter::new(File::create(p).map_err(|e| MediaCliError::File { path: p.clone(), message: e.to_string() })?), false)),
        None => None,
    };
    let end = args.target.duration.map(|d| Instant::now() + Duration::from_secs(d));
    let mut sub = None;
    let (mut decoded, mut last_decoded, mut last_bytes) = (0u64, 0u64, 0u64);
    let mut state = "waiting";
    let mut last_print = Instant::now();
    loop {
        if end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Connected { e2ee, .. }) => {
                state = if e2ee { "encrypted" } else { "not encrypted" };
                if !args.json {
                    println!("connected to session {}", r.session_id);
                }
            }
            Ok(Event::StreamCreated(s)) if sub.is_none() && args.stream.as_ref().is_none_or(|want| *want == s.stream_id) => {
                sub = Some(session.subscribe(&s.stream_id)?);
                if !args.json {
                    println!("subscribing to stream {} ({})", s.stream_id, s.name);
                }
            }
            Ok(Event::Subscriber { event, .. }) => match event {
                SubscriberEvent::VideoFrame(f) => {
                    decoded += 1;
                    if let Some((path, w, header)) = &mut out {
                        write_y4m(w, header, &f).map_err(|e| MediaCliError::File { path: path.clone(), message: e.to_string() })?;
                    }
                }
                SubscriberEvent::EncryptionSecretMismatch => state = "SECRET MISMATCH",
                SubscriberEvent::EncryptionSecretMatch => state = "encrypted",
                SubscriberEvent::Error(e) => eprintln!("subscriber error: {e}"),
                _ => {}
            },
            Ok(Event::Error(e)) => eprintln!("error: {e}"),
            Ok(Event::StreamDestroyed { stream, .. }) if args.stream.as_deref().is_none_or(|s| s == stream.stream_id) => {
                eprintln!("stream {} ended", stream.stream_id);
            }
            Ok(Event::Disconnected { reason }) => return Err(MediaCliError::Disconnected(reason)),
            Ok(_) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            let secs = last_print.elapsed().as_secs_f64();
            last_print = Instant::now();
            let stats = sub.map(|s| session.subscriber_stats(s)).unwrap_or_default();
            let fps = (decoded - last_decoded) as f64 / secs;
            let kbps = (stats.bytes_received - last_bytes) as f64 * 8.0 / 1000.0 / secs;
            (last_decoded, last_bytes) = (decoded, stats.bytes_received);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"frames_decoded": decoded, "fps": fps, "kbps": kbps, "encryption": state,
                        "audio_frames_decoded": stats.audio_frames_decoded, "decrypt_failures": stats.decrypt_failures})
                );
            } else {
                println!("frames decoded {decoded:>6} ({fps:4.1} fps)  {kbps:7.1} kb/s  encryption: {state}");
            }
        }
    }
    if let Some((path, mut w, _)) = out {
        w.flush().map_err(|e| MediaCliError::File { path, message: e.to_string() })?;
    }
    session.disconnect();
    Ok(())
}

fn write_y4m(w: &mut impl Write, header_written: &mut bool, f: &VideoFrame) -> std::io::Result<()> {
    if !*header_written {
        writeln!(w, "YUV4MPEG2 W{} H{} F30:1 Ip A1:1 C420jpeg", f.width, f.height)?;
        *header_written = true;
    }
    w.write_all(b"FRAME\n")?;
    w.write_all(&f.data)
}

/// Loops over the pictures of a Y4M file (4:2:0 only).
struct Y4mReader {
    frames: Vec<VideoFrame>,
    fps: u32,
    next: usize,
}

impl Y4mReader {
    fn open(path: &Path, fps: u32) -> Result<Self, MediaCliError> {
        let err = |m: String| MediaCliError::File { path: path.to_owned(), message: m };
        let mut r = BufReader::new(File::open(path).map_err(|e| err(e.to_string()))?);
        let mut header = String::new();
        r.read_line(&mut header).map_err(|e| err(e.to_string()))?;
        let mut fields = header.split_whitespace();
        if fields.next() != Some("YUV4MPEG2") {
            return Err(err("not a YUV4MPEG2 file".into()));
        }
        let (mut w, mut h) = (0u32, 0u32);
        for f in fields {
            match f.split_at(1) {
                ("W", v) => w = v.parse().map_err(|_| err(format!("bad width {v}")))?,
                ("H", v) => h = v.parse().map_err(|_| err(format!("bad height {v}")))?,
                ("C", v) if !v.starts_with("420") => return Err(err(format!("colour space C{v}: only 4:2:0 is supported"))),
                _ => {}
            }
        }
        if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 {
            return Err(err(format!("unsupported size {w}x{h} (even sizes only)")));
        }
        let size = VideoFrame::byte_len(w, h);
        let mut frames = Vec::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).map_err(|e| err(e.to_string()))? == 0 {
                break;
            }
            if !line.starts_with("FRAME") {
                return Err(err(format!("expected FRAME, found {:?}", line.trim())));
            }
            let mut data = vec![0u8; size];
            r.read_exact(&mut data).map_err(|e| err(format!("truncated frame: {e}")))?;
            frames.push(VideoFrame { width: w, height: h, data });
            if frames.len() >= 3000 {
                break;
            }
        }
        if frames.is_empty() {
            return Err(err("no frames".into()));
        }
        Ok(Self { frames, fps, next: 0 })
    }
}

impl VideoCapturer for Y4mReader {
    fn size(&self) -> (u32, u32) {
        (self.frames[0].width, self.frames[0].height)
    }
    fn fps(&self) -> u32 {
        self.fps
    }
    fn capture(&mut self) -> Option<VideoFrame> {
        let f = self.frames[self.next % self.frames.len()].clone();
        self.next += 1;
        Some(f)
    }
}

/// Loops over the frames of a VP8 IVF file.
struct IvfReader {
    frames: Vec<Vec<u8>>,
    fps: u32,
    next: usize,
}

impl IvfReader {
    fn open(path: &Path, fps: u32) -> Result<Self, MediaCliError> {
        let err = |m: String| MediaCliError::File { path: path.to_owned(), message: m };
        let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        if data.len() < 32 || &data[..4] != b"DKIF" {
            return Err(err("not an IVF file".into()));
        }
        if &data[8..12] != b"VP80" {
            return Err(err(format!("codec {:?}: only VP8 (VP80) is supported", String::from_utf8_lossy(&data[8..12]))));
        }
        let mut pos = u16::from_le_bytes([data[6], data[7]]) as usize;
        let mut frames = Vec::new();
        while pos + 12 <= data.len() {
            let len = u32::from_le_bytes(data[pos..pos + 4].try_into().expect("4 bytes")) as usize;
            pos += 12;
            let frame = data.get(pos..pos + len).ok_or_else(|| err("truncated frame".into()))?;
            frames.push(frame.to_vec());
            pos += len;
        }
        if frames.is_empty() {
            return Err(err("no frames".into()));
        }
        // Check that the file really is VP8 a decoder accepts.
        Vp8Decoder::new().and_then(|mut d| d.decode(&frames[0])).map_err(|e| err(format!("first frame does not decode: {e}")))?;
        Ok(Self { frames, fps, next: 0 })
    }
}

impl EncodedVideoSource for IvfReader {
    fn fps(&self) -> u32 {
        self.fps
    }
    fn next_frame(&mut self) -> Option<Vec<u8>> {
        let f = self.frames[self.next % self.frames.len()].clone();
        self.next += 1;
        Some(f)
    }
}
