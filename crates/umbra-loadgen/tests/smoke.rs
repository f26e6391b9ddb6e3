//! The load generator against a real `umbra serve` on loopback (no Janus, no namespace): two
//! subscribers for a few seconds. Frames must arrive with a latency and a loss figure; a run
//! whose publisher skips every 10th frame must report that as loss (at least ≈ 10 %).
//!
//! The server is `$UMBRA_BIN` if set, else built here with cargo (a no-op after the test
//! command's workspace build).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn umbra_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("UMBRA_BIN") {
        return PathBuf::from(bin);
    }
    // target/<profile>/deps/<this test> -> target/<profile>/umbra
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.args(["build", "--quiet", "-p", "umbra-server", "--bin", "umbra"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    assert!(cmd.status().expect("run cargo").success(), "cargo build -p umbra-server --bin umbra failed");
    profile_dir.join("umbra")
}

struct Server {
    child: Child,
    dir: PathBuf,
    url: String,
    key: String,
    secret: String,
}

impl Server {
    fn start() -> Server {
        let bin = umbra_bin();
        let dir = std::env::temp_dir().join(format!("umbra-loadgen-smoke-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let out = Command::new(&bin)
            .arg("--data-dir")
            .arg(&dir)
            .args(["project", "create", "--name", "loadgen", "--output", "json"])
            .output()
            .expect("umbra project create");
        assert!(out.status.success(), "project create: {}", String::from_utf8_lossy(&out.stderr));
        let p: Value = serde_json::from_slice(&out.stdout).unwrap();
        let log = std::fs::File::create(dir.join("server.log")).unwrap();
        let mut child = Command::new(&bin)
            .arg("--data-dir")
            .arg(&dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start umbra serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(l)) = lines.next() {
                let _ = tx.send(l);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("umbra serve did not start: {}", std::fs::read_to_string(dir.join("server.log")).unwrap_or_default())
        });
        let url = line.strip_prefix("umbra listening on ").expect("the listening line").trim().to_string();
        Server {
            child,
            dir,
            url,
            key: p["api_key"].as_str().unwrap().into(),
            secret: p["api_secret"].as_str().unwrap().into(),
        }
    }

    fn loadgen(&self, extra: &[&str]) -> Value {
        let pid = self.child.id().to_string();
        let out = Command::new(env!("CARGO_BIN_EXE_umbra-loadgen"))
            .args(["--backend", "umbra", "--url", &self.url, "--api-key", &self.key, "--api-secret", &self.secret])
            .args(["-n", "2", "--threads", "1", "--warmup", "1", "--duration", "3", "--grace", "2"])
            .args(["--server-pid", &pid])
            .args(extra)
            .output()
            .expect("run umbra-loadgen");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "umbra-loadgen failed: {stderr}");
        eprintln!("{stderr}");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("JSON report: {e}: {stderr}"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn f(r: &Value, k: &str) -> f64 {
    r[k].as_f64().unwrap_or_else(|| panic!("{k} missing in {r}"))
}

#[test]
fn frames_arrive_and_skipped_frames_count_as_loss() {
    let server = Server::start();

    let clean = server.loadgen(&[]);
    assert_eq!(clean["subscribers_receiving"], 2, "{clean}");
    assert_eq!(clean["subscribers_failed"], 0, "{clean}");
    // ~320 packets/s per subscriber for 3 s.
    assert!(f(&clean, "forwarded_packets") > 500.0, "{clean}");
    assert!(f(&clean, "video_frames_sent") >= 80.0 && f(&clean, "audio_frames_sent") >= 140.0, "{clean}");
    let p50 = f(&clean, "latency_ms_p50");
    let p99 = f(&clean, "latency_ms_p99");
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 3000.0, "{clean}");
    assert!(f(&clean, "cpu_us_per_pkt") >= 0.0 && f(&clean, "server_rss_mib") > 1.0, "{clean}");
    // Zero on a quiet machine; bounded loosely so that a loaded CI machine does not fail it.
    assert!(f(&clean, "loss_pct") < 20.0, "loss without skipped frames: {clean}");
    // The router's own overload counters, read from /metrics around the window.
    for k in ["server_frames_dropped_overload", "server_subscribers_fell_behind", "server_late_datagrams"] {
        assert!(f(&clean, k) >= 0.0, "{clean}");
    }

    // Every 10th video and audio frame is counted as sent but never sent.
    let lossy = server.loadgen(&["--drop-every", "10"]);
    assert_eq!(lossy["subscribers_receiving"], 2, "{lossy}");
    let loss = f(&lossy, "loss_pct");
    assert!((9.0..=40.0).contains(&loss), "every 10th frame skipped, yet loss is {loss} %: {lossy}");
    assert!(f(&lossy, "video_loss_pct") >= 8.0 && f(&lossy, "audio_loss_pct") >= 9.0, "{lossy}");

    // Paced at 2.5x its 2.5 Mb/s: a key frame (4x the mean, ~42 kB) takes ~53 ms to leave, so
    // the slowest frames of the window (the 3 s hold a key frame) arrive at least that late.
    let paced = server.loadgen(&["--pace", "2.5"]);
    assert_eq!(paced["subscribers_receiving"], 2, "{paced}");
    assert_eq!(f(&paced, "publisher_pace"), 2.5, "{paced}");
    assert!(f(&paced, "loss_pct") < 20.0, "loss with a paced publisher: {paced}");
    assert!(f(&paced, "latency_ms_p99") >= 30.0, "a paced key frame should arrive late: {paced}");
}
