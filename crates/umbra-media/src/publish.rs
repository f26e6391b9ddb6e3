//! `umbra-media publish`.

use std::path::PathBuf;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use clap::Args;
use umbra_client::media::pattern::Tone;
use umbra_client::{
    Event, PublisherEvent, PublisherSettings, TestPatternCapturer, ToneCapturer, VideoCodec, VideoSource,
};

use crate::error::MediaCliError;
use crate::files::{IvfReader, Y4mReader};
use crate::target::{Joined, Role, Target};

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
    /// Video codec the test pattern or Y4M pictures are encoded with: vp8, vp9 or h264.
    /// Subscribers decode whichever it is; one that cannot (Firefox has no H.264 here) gets no
    /// video. An IVF file is sent as the VP8 it holds.
    #[arg(long, default_value = "vp8", value_parser = parse_codec, conflicts_with = "ivf")]
    pub codec: VideoCodec,
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
    #[arg(long, default_value = "umbra-media publish")]
    pub name: String,
}

fn parse_codec(s: &str) -> Result<VideoCodec, String> {
    s.parse()
}

fn parse_size(s: &str) -> Result<(u32, u32), MediaCliError> {
    let bad = || MediaCliError::Usage(format!("--size {s:?}: expected WIDTHxHEIGHT with even numbers, e.g. 640x480"));
    let (w, h) = s.split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    // The encoder wants even sizes; the test pattern needs room for its frame-number strip.
    if !(64..=4096).contains(&w) || !(16..=4096).contains(&h) || w % 2 == 1 || h % 2 == 1 {
        return Err(bad());
    }
    Ok((w, h))
}

/// The command a second person runs to receive this stream.
fn subscribe_hint(joined: &Joined) -> String {
    let credentials = if joined.own_token { "--api-secret API_SECRET" } else { "--token A_SUBSCRIBER_TOKEN" };
    format!(
        "umbra-media subscribe --api-key {} {credentials} --session-id {} --secret '<the same secret>'",
        joined.api_key, joined.session_id
    )
}

pub fn run(args: PublishArgs) -> Result<(), MediaCliError> {
    let video = match (&args.y4m, &args.ivf) {
        (Some(path), _) => VideoSource::Raw(Box::new(Y4mReader::open(path, args.fps)?)),
        (_, Some(path)) => VideoSource::Encoded(Box::new(IvfReader::open(path, args.fps)?)),
        _ => {
            let (w, h) = parse_size(&args.size)?;
            VideoSource::Raw(Box::new(TestPatternCapturer::new(w, h, args.fps)))
        }
    };
    let (mut session, events, joined) = args.target.connect(Role::Publisher)?;
    let mut settings = Some(PublisherSettings {
        name: args.name.clone(),
        video: Some(video),
        audio: (!args.no_audio).then(|| Box::new(ToneCapturer(Tone::new(440.0))) as _),
        video_bitrate_kbps: args.bitrate,
        audio_bitrate_bps: 32_000,
        video_codec: args.codec,
    });
    let end = args.target.deadline();
    while end.is_none_or(|e| Instant::now() < e) {
        match events.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::Connected { e2ee, .. }) => {
                let how = if e2ee { "end-to-end encrypted" } else { "not encrypted" };
                println!("connected to session {} ({how})", joined.session_id);
                if let Some(s) = settings.take() {
                    session.publish(s)?;
                }
            }
            Ok(Event::Publisher { event: PublisherEvent::StreamCreated { stream_id }, .. }) => {
                println!("publishing stream {stream_id}");
                println!("subscribe with: {}", subscribe_hint(&joined));
            }
            Ok(Event::Publisher { event: PublisherEvent::MediaConnected, .. }) => println!("media flowing"),
            Ok(Event::Publisher { event: PublisherEvent::Error(e), .. }) | Ok(Event::Error(e)) => {
                eprintln!("error: {e}")
            }
            Ok(Event::Disconnected { reason }) => return Err(MediaCliError::Disconnected(reason)),
            Ok(_) | Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    session.disconnect();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_even_and_bounded() {
        assert_eq!(parse_size("640x480").unwrap(), (640, 480));
        for bad in ["640", "641x480", "32x480", "640x8", "8192x480", "axb", "640x480x2"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
