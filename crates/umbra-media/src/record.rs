//! `umbra-media record`: a participant that holds the secret and writes what it receives.
//!
//! It subscribes to every stream as it appears, asks the SDK for the decrypted but still
//! encoded frames (no decoding, no re-encoding), and hands them to one [`StreamRecorder`] per
//! stream. The server never sees a key: this process is just another client of the session, so
//! whoever runs it can watch the session, and the archive API stays refused for e2ee sessions.
//!
//! While it runs, a line `secret NEW-SECRET` on standard input changes the secret (as
//! `Session::set_encryption_secret` does for any client); `stop` ends the recording like
//! Ctrl-C. Each finished file is listed in `recording.json` in the output directory.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use clap::Args;
use umbra_client::{
    Codec, EncodedFrame, Event, Stream, SubscribeOptions, SubscriberEvent, SubscriberId, VideoCodec as SdkCodec,
};

use crate::error::MediaCliError;
use crate::recording::container::VideoCodec;
use crate::recording::manifest;
use crate::recording::stream::{EncodedIn, MediaKind, StreamInfo, StreamRecorder, StreamSummary};
use crate::target::{Role, Target};

#[derive(Debug, Args, Clone)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: Target,
    /// Directory for the files (created if missing): one WebM (VP8, VP9, Opus) or MP4 (H.264)
    /// per stream, plus recording.json.
    #[arg(long, default_value = "recording")]
    pub out: PathBuf,
}

/// A command typed on standard input.
enum Control {
    Secret(String),
    Stop,
}

fn read_stdin(tx: mpsc::Sender<Control>) {
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { return };
        let line = line.trim();
        let cmd = if let Some(secret) = line.strip_prefix("secret ") {
            Control::Secret(secret.to_owned())
        } else if line == "stop" {
            Control::Stop
        } else {
            if !line.is_empty() {
                eprintln!("umbra-media record: unknown command {line:?} (try `secret NEW-SECRET` or `stop`)");
            }
            continue;
        };
        if tx.send(cmd).is_err() {
            return;
        }
    }
}

fn codec_of(c: SdkCodec) -> Option<VideoCodec> {
    match c {
        SdkCodec::Vp8 => Some(VideoCodec::Vp8),
        SdkCodec::Vp9 => Some(VideoCodec::Vp9),
        SdkCodec::H264 => Some(VideoCodec::H264),
        #[allow(unreachable_patterns)] // the SDK's codec list is non-exhaustive
        _ => None,
    }
}

/// The recorder's view of a frame; `None` for a codec it has no container for (reported once
/// by the caller).
fn encoded_in(frame: EncodedFrame) -> Option<EncodedIn> {
    let media = match frame.codec {
        Codec::Opus => MediaKind::Audio,
        Codec::Video(c) => {
            MediaKind::Video { codec: codec_of(c)?, keyframe: frame.keyframe, contiguous: frame.contiguous }
        }
        #[allow(unreachable_patterns)]
        _ => return None,
    };
    Some(EncodedIn {
        arrival: frame.received,
        ticks: frame.rtp_timestamp,
        clock_rate: frame.clock_rate,
        media,
        data: frame.data,
    })
}

/// The per-stream state of the command.
struct Recorded {
    recorder: StreamRecorder,
    /// Reported as undecryptable and not yet decrypting again.
    mismatch: bool,
    /// Frames the muxer refused; the first refusal is printed, the count at the end.
    refused: u64,
}

struct Recorder {
    dir: PathBuf,
    session_id: String,
    streams: HashMap<SubscriberId, Recorded>,
    done: Vec<StreamSummary>,
    /// Streams that ended while their frames could not be decrypted.
    never_decrypted: Vec<String>,
}

impl Recorder {
    fn start_stream(&mut self, session: &umbra_client::Session, s: &Stream) -> Result<(), MediaCliError> {
        let sub = session.subscribe_with(&s.stream_id, SubscribeOptions::encoded_only())?;
        let info = StreamInfo {
            stream_id: s.stream_id.clone(),
            connection_id: s.connection_id.clone(),
            name: s.name.clone(),
            has_video: s.has_video,
            has_audio: s.has_audio,
            announced_size: s.video_dimensions.map(|d| (d.width, d.height)),
        };
        println!("stream {} ({}): subscribed", s.stream_id, s.name);
        self.streams
            .insert(sub, Recorded { recorder: StreamRecorder::new(info, &self.dir), mismatch: false, refused: 0 });
        Ok(())
    }

    fn on_subscriber(&mut self, sub: SubscriberId, event: SubscriberEvent) -> Result<(), MediaCliError> {
        let Some(rec) = self.streams.get_mut(&sub) else { return Ok(()) };
        let id = rec.recorder.info().stream_id.clone();
        match event {
            SubscriberEvent::EncodedFrame(frame) => {
                if let Some(frame) = encoded_in(frame) {
                    let was = rec.recorder.recording().is_some();
                    // One frame a muxer refuses (a malformed packet from a publisher) must not end
                    // the recording of every stream: it is skipped and counted.
                    if let Err(e) = rec.recorder.push(frame) {
                        if rec.refused == 0 {
                            eprintln!("stream {id}: a frame was not written: {e}");
                        }
                        rec.refused += 1;
                    }
                    if let (false, Some(path)) = (was, rec.recorder.recording()) {
                        println!("stream {id}: recording to {}", path.display());
                    }
                }
            }
            SubscriberEvent::EncryptionSecretMismatch | SubscriberEvent::StreamNotEncrypted => {
                rec.mismatch = true;
                rec.recorder.decryption_gap();
                println!(
                    "stream {id}: encryption secret mismatch: its frames cannot be decrypted, nothing of it is written until they can"
                );
            }
            SubscriberEvent::EncryptionSecretMatch => {
                rec.mismatch = false;
                println!("stream {id}: encryption secret matches again; recording resumes at the next key frame");
            }
            SubscriberEvent::Error(e) => eprintln!("stream {id}: {e}"),
            SubscriberEvent::Destroyed => self.end_stream(sub)?,
            _ => {}
        }
        self.collect_finished()
    }

    fn end_stream(&mut self, sub: SubscriberId) -> Result<(), MediaCliError> {
        let Some(rec) = self.streams.remove(&sub) else { return Ok(()) };
        let id = rec.recorder.info().stream_id.clone();
        if rec.refused > 0 {
            eprintln!("stream {id}: {} frame(s) were refused by the muxer and not written", rec.refused);
        }
        let parts = rec.recorder.finish()?;
        if parts.is_empty() && rec.mismatch {
            self.never_decrypted.push(id.clone());
        }
        for p in &parts {
            println!(
                "stream {id}: finished {} ({} ms, {} video and {} audio frames)",
                p.file.display(),
                p.duration_ms,
                p.video_frames,
                p.audio_frames
            );
        }
        self.done.extend(parts);
        self.write_manifest()
    }

    /// Parts closed while their stream goes on (a track appeared, the codec changed).
    fn collect_finished(&mut self) -> Result<(), MediaCliError> {
        let mut any = false;
        for rec in self.streams.values_mut() {
            let parts = rec.recorder.take_finished();
            any |= !parts.is_empty();
            self.done.extend(parts);
        }
        if any { self.write_manifest() } else { Ok(()) }
    }

    fn write_manifest(&self) -> Result<(), MediaCliError> {
        manifest::write(&self.dir, &self.session_id, &self.done)
            .map(drop)
            .map_err(|e| MediaCliError::file(&self.dir, e))
    }

    fn finish_all(&mut self) -> Result<(), MediaCliError> {
        let subs: Vec<SubscriberId> = self.streams.keys().copied().collect();
        for sub in subs {
            self.end_stream(sub)?;
        }
        self.write_manifest()
    }
}

pub fn run(args: RecordArgs) -> Result<(), MediaCliError> {
    if args.target.secret.is_none() {
        eprintln!("umbra-media record: no --secret: only sessions without end-to-end encryption can be recorded");
    }
    std::fs::create_dir_all(&args.out).map_err(|e| MediaCliError::file(&args.out, e))?;
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| MediaCliError::Usage(format!("cannot handle signals: {e}")))?;
    }
    let (ctl_tx, ctl_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("record-stdin".into())
        .spawn(move || read_stdin(ctl_tx))
        .map_err(|e| MediaCliError::Usage(format!("cannot read standard input: {e}")))?;

    let (mut session, events, joined) = args.target.connect(Role::Subscriber)?;
    println!("recording session {} into {}", joined.session_id, args.out.display());
    let mut rec = Recorder {
        dir: args.out.clone(),
        session_id: joined.session_id.clone(),
        streams: HashMap::new(),
        done: Vec::new(),
        never_decrypted: Vec::new(),
    };
    let result = event_loop(&mut session, &events, &ctl_rx, &stop, args.target.deadline(), &mut rec);
    // Whatever ended the loop, the files written so far are finished and listed.
    let finished = rec.finish_all();
    session.disconnect();
    result?;
    finished?;
    println!("recorded {} file(s); list in {}", rec.done.len(), args.out.join(manifest::FILE_NAME).display());
    if !rec.never_decrypted.is_empty() {
        return Err(MediaCliError::NotRecorded(format!(
            "nothing was recorded of stream(s) {} : their frames never decrypted with this secret",
            rec.never_decrypted.join(", ")
        )));
    }
    Ok(())
}

fn event_loop(
    session: &mut umbra_client::Session,
    events: &Receiver<Event>,
    ctl: &Receiver<Control>,
    stop: &AtomicBool,
    end: Option<Instant>,
    rec: &mut Recorder,
) -> Result<(), MediaCliError> {
    while end.is_none_or(|e| Instant::now() < e) && !stop.load(Ordering::Relaxed) {
        while let Ok(cmd) = ctl.try_recv() {
            match cmd {
                Control::Secret(s) => match session.set_encryption_secret(&s) {
                    Ok(()) => println!("secret changed"),
                    Err(e) => eprintln!("umbra-media record: secret not changed: {e}"),
                },
                Control::Stop => return Ok(()),
            }
        }
        match events.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::StreamCreated(s)) => rec.start_stream(session, &s)?,
            Ok(Event::Subscriber { subscriber, event }) => rec.on_subscriber(subscriber, event)?,
            Ok(Event::StreamDestroyed { stream, .. }) => {
                let sub =
                    rec.streams.iter().find(|(_, r)| r.recorder.info().stream_id == stream.stream_id).map(|(s, _)| *s);
                if let Some(sub) = sub {
                    rec.end_stream(sub)?;
                }
            }
            Ok(Event::Error(e)) => eprintln!("umbra-media record: {e}"),
            Ok(Event::Disconnected { reason }) => return Err(MediaCliError::Disconnected(reason)),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
    Ok(())
}
