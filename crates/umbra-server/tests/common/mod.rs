//! Test harness: runs the real `umbra` binary on a loopback port with a fresh data directory,
//! and talks to it over real HTTP and WebSocket connections.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::protocol::WebSocket;
use tungstenite::{Message, stream::MaybeTlsStream};

pub mod cluster;
pub mod native;
pub mod postgres;

pub const BIN: &str = env!("CARGO_BIN_EXE_umbra");
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

pub fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

pub struct Server {
    child: Option<Child>,
    pub addr: String,
    pub data_dir: PathBuf,
    pub stderr_path: PathBuf,
}

impl Server {
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(data_dir).unwrap();
        let stderr_path = data_dir.join(format!("server-{}.log", std::process::id()));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&stderr_path).unwrap();
        let mut child = Command::new(BIN)
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            // Servers run in parallel: each router on its own free UDP port unless the test says.
            .args(if extra.iter().any(|a| *a == "--media-bind" || *a == "--no-media") {
                &[][..]
            } else {
                &["--media-bind", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start umbra");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("server did not start: {}", std::fs::read_to_string(&stderr_path).unwrap_or_default())
        });
        let addr = line.strip_prefix("umbra listening on http://").expect("listening line").trim().to_owned();
        Server { child: Some(child), addr, data_dir: data_dir.to_owned(), stderr_path }
    }

    /// The child process, which the caller now owns (a test that killed it reaps it).
    pub fn take_child(&mut self) -> Option<Child> {
        self.child.take()
    }

    /// The server's process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("server did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub struct CliOut {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

pub fn cli(data_dir: &Path, args: &[&str]) -> CliOut {
    let out = Command::new(BIN).arg("--data-dir").arg(data_dir).args(args).output().unwrap();
    CliOut {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[derive(Debug, Clone)]
pub struct Project {
    pub key: String,
    pub secret: String,
}

pub fn create_project(data_dir: &Path, name: &str, e2ee: bool) -> Project {
    let mut args = vec!["project", "create", "--name", name, "--output", "json"];
    if e2ee {
        args.push("--e2ee");
    }
    let out = cli(data_dir, &args);
    assert!(out.ok, "project create failed: {}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    Project { key: v["api_key"].as_str().unwrap().into(), secret: v["api_secret"].as_str().unwrap().into() }
}

/// An `X-OPENTOK-AUTH` value as the SDKs make it.
pub fn auth(p: &Project) -> String {
    let now = now();
    umbra_server::jwt::sign_hs256(
        &json!({"iss": p.key, "ist": "project", "iat": now, "exp": now + 180, "jti": "t"}),
        p.secret.as_bytes(),
    )
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> u64 {
        self.json()["code"].as_u64().unwrap_or_else(|| panic!("no code in {}", String::from_utf8_lossy(&self.body)))
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A server may answer (413, say) and close before reading all of a large body: keep what
    // it said rather than failing on the write or on a reset.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if raw.is_empty() => panic!("no HTTP response: {e}"),
            Err(_) => break,
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))).collect();
    assert!(
        !headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked")),
        "harness does not decode chunked bodies"
    );
    Resp { status, headers, body: raw[split + 4..].to_vec() }
}

pub fn post_form(addr: &str, path: &str, auth: Option<&str>, form: &str) -> Resp {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(a) = auth {
        h.push(("X-OPENTOK-AUTH", a));
    }
    http(addr, "POST", path, &h, form.as_bytes())
}

pub fn post_json(addr: &str, path: &str, auth: &str, body: &Value) -> Resp {
    http(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json"), ("X-OPENTOK-AUTH", auth)],
        body.to_string().as_bytes(),
    )
}

pub fn create_session(addr: &str, p: &Project, form: &str) -> Resp {
    post_form(addr, "/session/create", Some(&auth(p)), form)
}

pub fn new_session(addr: &str, p: &Project, form: &str) -> String {
    let r = create_session(addr, p, form);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()[0]["session_id"].as_str().unwrap().to_owned()
}

pub fn token(p: &Project, session_id: &str, role: &str, data: Option<&str>) -> String {
    let mut claims = json!({
        "iss": p.key, "ist": "project", "iat": now(), "exp": now() + 3600, "scope": "session.connect",
        "session_id": session_id, "role": role, "nonce": 1,
    });
    if let Some(d) = data {
        claims["connection_data"] = d.into();
    }
    umbra_server::jwt::sign_hs256(&claims, p.secret.as_bytes())
}

pub struct Ws {
    sock: WebSocket<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<Value>,
    pub last_seq: u64,
    next_id: u64,
}

pub enum Recv {
    Msg(Value),
    Closed(Option<u16>),
}

impl Ws {
    pub fn open(addr: &str) -> Ws {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let (sock, _) =
            tungstenite::client(format!("ws://{addr}/v1/signaling"), MaybeTlsStream::Plain(stream)).unwrap();
        Ws { sock, pending: VecDeque::new(), last_seq: 0, next_id: 1 }
    }

    /// Connects with a token; returns the socket and the first server message (welcome or error).
    pub fn connect(addr: &str, token: &str, session_id: Option<&str>) -> (Ws, Value) {
        let mut ws = Ws::open(addr);
        let mut msg = json!({"type": "connect", "v": 1, "token": token});
        if let Some(s) = session_id {
            msg["session_id"] = s.into();
        }
        ws.send(&msg);
        let first = ws.next().expect("a first message");
        (ws, first)
    }

    pub fn join(addr: &str, token: &str) -> (Ws, Value) {
        let (ws, w) = Ws::connect(addr, token, None);
        assert_eq!(w["type"], "welcome", "{w}");
        (ws, w)
    }

    pub fn send(&mut self, v: &Value) {
        self.sock.send(Message::Text(v.to_string().into())).unwrap();
    }

    pub fn send_raw(&mut self, m: Message) {
        self.sock.send(m).unwrap();
    }

    /// The next message from the socket (not the buffer), or how it closed.
    pub fn recv_raw(&mut self) -> Recv {
        loop {
            match self.sock.read() {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    // Everything the server says is signaling v1 as umbra-protocol defines it.
                    if let Err(e) = serde_json::from_str::<umbra_protocol::ServerFrame>(t.as_str()) {
                        panic!("not a ServerFrame ({e}): {t}");
                    }
                    if let Some(s) = v.get("seq").and_then(Value::as_u64) {
                        self.last_seq = s;
                    }
                    return Recv::Msg(v);
                }
                Ok(Message::Close(f)) => return Recv::Closed(f.map(|f| f.code.into())),
                Ok(_) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Recv::Closed(None);
                }
                Err(tungstenite::Error::Protocol(_)) => return Recv::Closed(None),
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) =>
                {
                    panic!("timed out waiting for a signaling message")
                }
                Err(tungstenite::Error::Io(_)) => return Recv::Closed(None),
                Err(e) => panic!("websocket error: {e}"),
            }
        }
    }

    pub fn next(&mut self) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        match self.recv_raw() {
            Recv::Msg(v) => Some(v),
            Recv::Closed(_) => None,
        }
    }

    /// Reads until a message of type `ty` arrives; others are kept for later.
    pub fn expect(&mut self, ty: &str) -> Value {
        if let Some(i) = self.pending.iter().position(|m| m["type"] == ty) {
            return self.pending.remove(i).unwrap();
        }
        for _ in 0..2000 {
            match self.recv_raw() {
                Recv::Msg(m) if m["type"] == ty => return m,
                Recv::Msg(m) => self.pending.push_back(m),
                Recv::Closed(c) => panic!("socket closed ({c:?}) while waiting for {ty}; pending {:?}", self.pending),
            }
        }
        panic!("no {ty} within 2000 messages")
    }

    /// Sends a request and returns its `ack` or `error`.
    pub fn request(&mut self, mut v: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        v["id"] = id.into();
        self.send(&v);
        for _ in 0..2000 {
            match self.recv_raw() {
                Recv::Msg(m)
                    if ["ack", "error", "pong"].contains(&m["type"].as_str().unwrap_or("")) && m["id"] == id =>
                {
                    return m;
                }
                Recv::Msg(m) => self.pending.push_back(m),
                Recv::Closed(c) => panic!("socket closed ({c:?}) while waiting for reply to {v}"),
            }
        }
        panic!("no reply to {v}")
    }

    /// Waits for the socket to close, returning the close code; fails on timeout.
    pub fn expect_close(&mut self) -> Option<u16> {
        for _ in 0..2000 {
            match self.recv_raw() {
                Recv::Closed(c) => return c,
                Recv::Msg(m) => self.pending.push_back(m),
            }
        }
        panic!("socket did not close")
    }

    pub fn pending(&self) -> &VecDeque<Value> {
        &self.pending
    }

    /// Drops the TCP connection without a close handshake, like a lost network.
    pub fn kill(self) {
        if let MaybeTlsStream::Plain(s) = self.sock.get_ref() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

pub fn tmpdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
