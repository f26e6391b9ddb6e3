//! A real `umbra serve` for the SDK's tests: the `umbra` binary of crates/umbra-server, on a
//! free loopback port (HTTP and media), with a fresh data directory that is removed afterwards.
//!
//! The binary is `$UMBRA_BIN` if set, else the one cargo builds next to this test
//! (`cargo build -p umbra-server --bin umbra`, run here: a no-op when it is fresh, as after the
//! test command's workspace build).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use serde_json::Value;

use super::rest::AppServer;

/// The `umbra` binary, built once per test process.
pub fn umbra_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    static BUILD: Mutex<()> = Mutex::new(());
    BIN.get_or_init(|| {
        let _one_build = BUILD.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bin) = std::env::var_os("UMBRA_BIN") {
            return PathBuf::from(bin);
        }
        // target/<profile>/deps/<this test> -> target/<profile>/umbra
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps").to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let release = profile_dir.file_name().is_some_and(|n| n == "release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--quiet", "-p", "umbra-server", "--bin", "umbra"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo to build the umbra binary");
        assert!(status.success(), "cargo build -p umbra-server --bin umbra failed");
        profile_dir.join("umbra")
    })
    .clone()
}

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "umbra-client-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running `umbra serve`; killed on drop.
pub struct Server {
    child: Child,
    pub addr: String,
    data: TempDir,
}

impl Server {
    /// Starts a server; `extra` are more `serve` arguments (e.g. `--media-advertise`).
    pub fn start(extra: &[&str]) -> Server {
        Self::start_media_on("127.0.0.1:0", extra)
    }

    /// Starts a server whose router binds `media_bind` (e.g. a port a test put a relay in
    /// front of).
    pub fn start_media_on(media_bind: &str, extra: &[&str]) -> Server {
        Self::start_with(&[], media_bind, extra)
    }

    /// Starts a server with `global` flags before `serve` (e.g. `--database postgres://…`).
    pub fn start_with(global: &[&str], media_bind: &str, extra: &[&str]) -> Server {
        let data = TempDir::new("server");
        let log = std::fs::File::create(data.path().join("server.log")).expect("server log");
        let mut child = Command::new(umbra_bin())
            .arg("--data-dir")
            .arg(data.path())
            .args(global)
            .args(["serve", "--listen", "127.0.0.1:0", "--media-bind", media_bind])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start umbra serve");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep reading so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "umbra serve did not start: {}",
                    std::fs::read_to_string(data.path().join("server.log")).unwrap_or_default()
                )
            }
        };
        let addr = line.strip_prefix("umbra listening on http://").expect("the listening line").trim().to_string();
        Server { child, addr, data }
    }

    /// A new project (`umbra project create`) on this server's data directory.
    pub fn project(&self, name: &str) -> AppServer {
        self.project_with(name, false)
    }

    /// A new project with the end-to-end encryption add-on (its sessions may be e2ee).
    pub fn e2ee_project(&self, name: &str) -> AppServer {
        self.project_with(name, true)
    }

    fn project_with(&self, name: &str, e2ee: bool) -> AppServer {
        let mut cmd = Command::new(umbra_bin());
        cmd.arg("--data-dir").arg(self.data.path()).args(["project", "create", "--name", name, "--output", "json"]);
        if e2ee {
            cmd.arg("--e2ee");
        }
        let out = cmd.output().expect("run umbra project create");
        assert!(out.status.success(), "project create: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("project JSON");
        AppServer {
            addr: self.addr.clone(),
            api_key: v["api_key"].as_str().expect("api_key").to_string(),
            api_secret: v["api_secret"].as_str().expect("api_secret").to_string(),
        }
    }

    /// The server process, for reading its memory and descriptors under /proc.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a node that drains) and waits for the process to end.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
    }

    /// SIGKILL: the process dies without a word.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the server process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
