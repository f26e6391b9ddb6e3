//! `umbra-media`: the native SDK on the command line. `publish` sends the test pattern and a
//! tone (or a Y4M / VP8 IVF file), `subscribe` receives a stream and prints what it decodes,
//! `record` writes every stream of a session to files without re-encoding; in an end-to-end
//! encrypted session each encrypts or decrypts with `--secret`.
//!
//! It is a separate binary from the server on purpose: this one links libvpx, libopus and the
//! frame crypto, and the `umbra` server must not (it forwards frames it cannot read).

#![forbid(unsafe_code)]

mod app_server;
mod error;
mod files;
mod publish;
mod record;
mod recording;
mod subscribe;
mod target;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "umbra-media",
    version,
    about = "Publish and subscribe to Umbra sessions with the native SDK (VP8, VP9, H.264, Opus, end-to-end encryption).",
    long_about = "Publish and subscribe to Umbra sessions with the native SDK (VP8, VP9, H.264, Opus, end-to-end encryption).\n\n\
        With a project's key and secret it acts as your app server would (creates a session, makes tokens):\n  \
        umbra-media publish --api-key KEY --api-secret SECRET --secret 'correct horse battery staple' [--codec vp9|h264]\n  \
        umbra-media subscribe --api-key KEY --api-secret SECRET --session-id SESSION --secret '...'\n\
        With a token your app server made:\n  \
        umbra-media subscribe --api-key KEY --session-id SESSION --token TOKEN --secret '...'"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish the test pattern and a tone (or a Y4M / VP8 IVF file), end-to-end encrypted with
    /// --secret in E2EE sessions.
    Publish(publish::PublishArgs),
    /// Subscribe and print live stats (frames decoded, bitrate, encryption state); optionally
    /// write the decoded video to a Y4M file.
    Subscribe(subscribe::SubscribeArgs),
    /// Join as a participant that holds the secret and write every stream, decrypted but not
    /// re-encoded, to WebM (VP8/VP9/Opus) or MP4 (H.264) files: the way to record an end-to-end
    /// encrypted session.
    Record(record::RecordArgs),
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Publish(args) => publish::run(args),
        Command::Subscribe(args) => subscribe::run(args),
        Command::Record(args) => record::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("umbra-media: {e}");
            ExitCode::FAILURE
        }
    }
}
