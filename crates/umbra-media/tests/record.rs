//! `umbra-media record` against a real server with real publishers, read back with ffprobe and
//! ffmpeg (Debian `ffmpeg`, installed by the test command): files a standard tool opens, with
//! the codec, duration and pictures the publishers sent, and nothing written without the secret.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Killed, SECRET, Server, bin, publish, server};
use umbra_client::media::VideoFrame;
use umbra_client::media::analysis::{dominant_frequency, psnr};
use umbra_client::media::pattern::TestPattern;

const FPS: f64 = 30.0;

/// What a recorder run printed and how it ended.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Where and as whom a recorder connects (owned, so a recorder can run on another thread).
#[derive(Clone)]
struct Creds {
    url: String,
    api_key: String,
    api_secret: String,
}

fn creds(s: &Server) -> Creds {
    Creds { url: s.url.clone(), api_key: s.project.api_key.clone(), api_secret: s.project.secret.clone() }
}

/// Runs `record` for `secs`; `script` lines go to its standard input at the given offsets.
fn record(s: &Creds, session: &str, secret: &str, secs: u64, out: &Path, script: &[(Duration, &str)]) -> Run {
    let mut child = Killed(
        Command::new(bin())
            .args(["record", "--url", &s.url, "--api-key", &s.api_key, "--api-secret", &s.api_secret])
            .args(["--session-id", session, "--secret", secret, "--duration", &secs.to_string()])
            .arg("--out")
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let started = Instant::now();
    for (at, line) in script {
        std::thread::sleep(at.saturating_sub(started.elapsed()));
        writeln!(stdin, "{line}").unwrap();
    }
    let stdout = child.0.stdout.take().unwrap();
    let reader =
        std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut stderr).unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs + 30);
    let status = loop {
        if let Some(st) = child.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "record did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    drop(stdin);
    Run { ok: status.success(), stdout: reader.join().unwrap(), stderr }
}

fn media_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "webm" || e == "mp4"))
        .collect();
    v.sort();
    v
}

fn ffprobe(path: &Path) -> Value {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"])
        .arg(path)
        .output()
        .expect("ffprobe (Debian ffmpeg) is installed by scripts/install-deps.sh --tests");
    assert!(out.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn codec_names(probe: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        probe["streams"].as_array().unwrap().iter().map(|s| s["codec_name"].as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

/// Every picture of the file, decoded by ffmpeg.
fn decode_pictures(path: &Path, w: u32, h: u32) -> Vec<VideoFrame> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        // passthrough: one output picture per stored frame, none duplicated to fill gaps.
        .args(["-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    let size = VideoFrame::byte_len(w, h);
    assert_eq!(out.stdout.len() % size, 0, "whole {w}x{h} pictures");
    out.stdout.chunks(size).map(|c| VideoFrame::from_i420(w, h, c.to_vec()).unwrap()).collect()
}

fn decode_audio(path: &Path) -> Vec<i16> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-map", "0:a:0", "-f", "s16le", "-ac", "1", "-ar", "48000", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
}

/// Checks one recorded stream of the 320x240 test pattern: ffprobe sees `codecs`, the pictures
/// are the publisher's (frame numbers read back, PSNR against the source), and the file's
/// duration is within 5 % of the span of source frames it holds. Returns that span in seconds.
fn check_pattern_file(path: &Path, codecs: &[&str]) -> f64 {
    let probe = ffprobe(path);
    assert_eq!(codec_names(&probe), codecs, "{}: {probe}", path.display());
    let pictures = decode_pictures(path, 320, 240);
    let pattern = TestPattern::new(320, 240);
    let numbers: Vec<u32> = pictures.iter().filter_map(TestPattern::read_frame_number).collect();
    assert_eq!(numbers.len(), pictures.len(), "every picture carries a frame number");
    let (first, last) = (numbers[0], *numbers.last().unwrap());
    assert!(numbers.windows(2).all(|w| w[1] > w[0]), "{}: source frames in order: {numbers:?}", path.display());
    let mut worst = f64::INFINITY;
    for (pic, n) in pictures.iter().zip(&numbers) {
        worst = worst.min(psnr(&pattern.frame(*n), pic).unwrap());
    }
    assert!(worst >= 28.0, "{}: worst PSNR {worst:.1} dB", path.display());
    let span = (last - first + 1) as f64 / FPS;
    let duration: f64 = probe["format"]["duration"].as_str().unwrap().parse().unwrap();
    eprintln!(
        "{}: {codecs:?}, {} pictures, duration {duration:.2} s, source span {span:.2} s, worst PSNR {worst:.1} dB",
        path.display(),
        pictures.len()
    );
    assert!(
        (duration - span).abs() <= 0.05 * span,
        "{}: duration {duration:.2} s, source span {span:.2} s",
        path.display()
    );
    span
}

#[test]
fn two_publishers_are_recorded_to_files_that_decode_to_what_they_sent() {
    let s = server();
    let (_alice, session) = publish(&s, None, SECRET, 60, &["--name", "alice"]);
    let (_bob, _) = publish(&s, Some(&session), SECRET, 60, &["--name", "bob"]);
    let dir = tempfile::tempdir().unwrap();
    let run = record(&creds(&s), &session, SECRET, 12, dir.path(), &[]);
    assert!(run.ok, "record failed:\n{}\n{}", run.stdout, run.stderr);
    let files = media_files(dir.path());
    assert_eq!(files.len(), 2, "one file per publisher: {files:?}\n{}", run.stdout);
    for f in &files {
        let span = check_pattern_file(f, &["opus", "vp8"]);
        assert!(span >= 9.0, "{}: {span:.1} s of the 12 s run", f.display());
        let audio = decode_audio(f);
        let freq = dominant_frequency(&audio[audio.len() / 2..], 48_000).unwrap();
        assert!((freq - 440.0).abs() <= 10.0, "{}: the publisher's 440 Hz tone, got {freq}", f.display());
        assert!(audio.len() as f64 / 48_000.0 >= span * 0.95, "{}: audio covers the video", f.display());
    }
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.path().join("recording.json")).unwrap()).unwrap();
    let mut names: Vec<&str> =
        manifest["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob"], "{manifest}");
}

#[test]
fn a_recorder_with_another_secret_writes_no_media_and_reports_the_mismatch() {
    let s = server();
    let (_alice, session) = publish(&s, None, SECRET, 30, &[]);
    let dir = tempfile::tempdir().unwrap();
    let run = record(&creds(&s), &session, "not the publisher's secret", 5, dir.path(), &[]);
    assert!(!run.ok, "a recording that holds nothing is a failure:\n{}", run.stdout);
    assert!(run.stdout.contains("encryption secret mismatch"), "{}", run.stdout);
    assert!(run.stderr.contains("never decrypted"), "{}", run.stderr);
    assert_eq!(media_files(dir.path()), Vec::<PathBuf>::new());
}

#[test]
fn a_recorder_given_the_right_secret_while_it_runs_starts_writing() {
    let s = server();
    let (_alice, session) = publish(&s, None, SECRET, 40, &[]);
    let dir = tempfile::tempdir().unwrap();
    let script = [(Duration::from_secs(4), format!("secret {SECRET}"))];
    let script: Vec<(Duration, &str)> = script.iter().map(|(d, l)| (*d, l.as_str())).collect();
    let run = record(&creds(&s), &session, "a wrong secret at first", 12, dir.path(), &script);
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    let mismatch = run.stdout.find("encryption secret mismatch").expect("the mismatch is reported first");
    let matched = run.stdout.find("matches again").expect("then the match");
    assert!(mismatch < matched, "{}", run.stdout);
    let files = media_files(dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let span = check_pattern_file(&files[0], &["opus", "vp8"]);
    assert!((4.0..=9.0).contains(&span), "recorded from the secret change to the end: {span:.1} s");
}

#[test]
fn a_publisher_that_leaves_and_rejoins_gets_a_second_file() {
    let s = server();
    let (first, session) = publish(&s, None, SECRET, 30, &["--name", "carol"]);
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_owned();
    let (c, session2) = (creds(&s), session.clone());
    let recorder = std::thread::spawn(move || record(&c, &session2, SECRET, 14, &dir_path, &[]));
    std::thread::sleep(Duration::from_secs(5));
    drop(first);
    std::thread::sleep(Duration::from_secs(1));
    let (_again, _) = publish(&s, Some(&session), SECRET, 30, &["--name", "carol"]);
    let run = recorder.join().unwrap();
    assert!(run.ok, "{}\n{}", run.stdout, run.stderr);
    let files = media_files(dir.path());
    assert_eq!(files.len(), 2, "one file per appearance: {files:?}\n{}", run.stdout);
    for f in &files {
        check_pattern_file(f, &["opus", "vp8"]);
    }
}

#[test]
fn h264_goes_to_mp4_and_vp9_to_webm() {
    let s = server();
    let (_h264, session) = publish(&s, None, SECRET, 60, &["--codec", "h264", "--name", "h264"]);
    let (_vp9, _) = publish(&s, Some(&session), SECRET, 60, &["--codec", "vp9", "--name", "vp9"]);
    let dir = tempfile::tempdir().unwrap();
    let run = record(&creds(&s), &session, SECRET, 10, dir.path(), &[]);
    assert!(run.ok, "record failed:\n{}\n{}", run.stdout, run.stderr);
    let files = media_files(dir.path());
    let (mp4, webm): (Vec<&PathBuf>, Vec<&PathBuf>) = files.iter().partition(|p| p.extension().unwrap() == "mp4");
    assert_eq!((mp4.len(), webm.len()), (1, 1), "{files:?}\n{}", run.stdout);
    for (file, codecs) in [(mp4[0], ["h264", "opus"]), (webm[0], ["opus", "vp9"])] {
        let span = check_pattern_file(file, &codecs);
        assert!(span >= 7.0, "{}: {span:.1} s of the 10 s run", file.display());
    }
}
