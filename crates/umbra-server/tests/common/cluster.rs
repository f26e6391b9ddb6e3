//! A whole cluster on loopback: the test's own PostgreSQL and Redis, N `umbra serve` nodes on
//! them, and a TCP load balancer in front (what a deployment puts before its nodes), all torn
//! down with the value.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::postgres::Postgres;
use super::{Project, Server, cli};

/// A Redis server of the test's own: a free loopback port, nothing persisted.
pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let exe = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("redis-server is not installed: ./scripts/test.sh installs it (scripts/install-deps.sh --tests)");
        let dir = tempfile::Builder::new().prefix("umbra-redis-").tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(exe)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "yes", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port, _dir: dir }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Accepts on a loopback port and splices each connection to the first backend, in turn, that
/// accepts it: a node that died refuses, and the next one gets the client.
pub struct LoadBalancer {
    pub addr: String,
    stop: Arc<AtomicBool>,
    backends: Arc<Mutex<Vec<String>>>,
}

impl LoadBalancer {
    pub fn start(backends: Vec<String>) -> LoadBalancer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let backends = Arc::new(Mutex::new(backends));
        let next = AtomicUsize::new(0);
        let (flag, list) = (stop.clone(), backends.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let start = next.fetch_add(1, Ordering::Relaxed);
                let backends = list.lock().unwrap().clone();
                let upstream = (0..backends.len())
                    .map(|i| &backends[(start + i) % backends.len()])
                    .find_map(|b| TcpStream::connect_timeout(&b.parse().unwrap(), Duration::from_secs(1)).ok());
                let Some(upstream) = upstream else { continue };
                splice(client, upstream);
            }
        });
        LoadBalancer { addr, stop, backends }
    }

    /// Points backend `i` at a new address (a node started again on another port).
    pub fn set_backend(&self, i: usize, addr: String) {
        self.backends.lock().unwrap()[i] = addr;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

fn splice(a: TcpStream, b: TcpStream) {
    let _ = a.set_nodelay(true);
    let _ = b.set_nodelay(true);
    let (a2, b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
    std::thread::spawn(move || copy(a, b2));
    std::thread::spawn(move || copy(b, a2));
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

impl Drop for LoadBalancer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

pub struct Cluster {
    pub nodes: Vec<Option<Server>>,
    /// Each node's `serve` flags, to start it again.
    args: Vec<Vec<String>>,
    pub ids: Vec<String>,
    pub lb: LoadBalancer,
    pub project: Project,
    pub database: String,
    pub redis: Redis,
    pub pg: Postgres,
    pub dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes named n0…, `extra` added to each node's `serve` flags.
    pub fn start(n: usize, extra: &[&str]) -> Cluster {
        let pg = Postgres::start();
        let redis = Redis::start();
        let database = pg.new_database();
        let dir = super::tmpdir();
        let out = cli(
            dir.path(),
            &["--database", &database, "project", "create", "--name", "cluster", "--e2ee", "--output", "json"],
        );
        assert!(out.ok, "project create failed: {}", out.stderr);
        let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
        let project =
            Project { key: v["api_key"].as_str().unwrap().into(), secret: v["api_secret"].as_str().unwrap().into() };
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let args: Vec<Vec<String>> = ids
            .iter()
            .map(|id| {
                let mut a = vec!["--database".to_owned(), database.clone(), "--redis".into(), redis.url()];
                a.extend(["--node-id".to_owned(), id.clone()]);
                a.extend(extra.iter().map(|s| s.to_string()));
                a
            })
            .collect();
        let nodes: Vec<Option<Server>> = ids.iter().zip(&args).map(|(id, a)| Some(start_node(&dir, id, a))).collect();
        let lb = LoadBalancer::start(nodes.iter().map(|s| s.as_ref().unwrap().addr.clone()).collect());
        Cluster { nodes, args, ids, lb, project, database, redis, pg, dir }
    }

    /// Starts a stopped or killed node again (on a new port, which the load balancer takes).
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        let node = start_node(&self.dir, &self.ids[i], &self.args[i]);
        self.lb.set_backend(i, node.addr.clone());
        self.nodes[i] = Some(node);
    }

    pub fn node(&self, i: usize) -> &Server {
        self.nodes[i].as_ref().expect("node is running")
    }

    pub fn addr(&self, i: usize) -> String {
        self.node(i).addr.clone()
    }

    /// SIGKILL: the node dies without a word.
    pub fn kill(&mut self, i: usize) {
        let mut s = self.nodes[i].take().expect("node is running");
        let _ = Command::new("kill").args(["-KILL", &s.pid().to_string()]).status();
        if let Some(mut c) = s.take_child() {
            let _ = c.wait();
        }
    }

    /// SIGTERM, waiting for the node to exit.
    pub fn stop(&mut self, i: usize) {
        let mut s = self.nodes[i].take().expect("node is running");
        let st = s.stop();
        assert!(st.success(), "node {i} exited with {st}:\n{}", s.log());
    }

    /// Which node (index) hosts a session now, from Redis.
    pub fn home_of(&self, session_id: &str) -> Option<usize> {
        let mut c = redis_conn(&self.redis);
        let id = redis_get(&mut c, &format!("umbra:home:{session_id}"))?;
        self.ids.iter().position(|x| *x == id)
    }

    pub fn logs(&self) -> String {
        let mut out = String::new();
        for id in &self.ids {
            let path = self.dir.path().join(id);
            for e in std::fs::read_dir(&path).into_iter().flatten().flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out.push_str(&format!(
                        "==== {id} ====\n{}\n",
                        std::fs::read_to_string(e.path()).unwrap_or_default()
                    ));
                }
            }
        }
        out
    }
}

fn start_node(dir: &tempfile::TempDir, id: &str, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(&dir.path().join(id), &args)
}

/// A bare RESP connection (the tests' view of Redis; the server has its own client).
pub fn redis_conn(r: &Redis) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// `GET key` over RESP: the value, or `None` for a missing key.
pub fn redis_get(c: &mut TcpStream, key: &str) -> Option<String> {
    let cmd = format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len());
    c.write_all(cmd.as_bytes()).unwrap();
    let mut header = Vec::new();
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n") {
        c.read_exact(&mut byte).unwrap();
        header.push(byte[0]);
    }
    let line = String::from_utf8(header).unwrap();
    let len: i64 = line.trim_end().strip_prefix('$').expect("a bulk string").parse().unwrap();
    if len < 0 {
        return None;
    }
    let mut body = vec![0u8; len as usize + 2];
    c.read_exact(&mut body).unwrap();
    body.truncate(len as usize);
    Some(String::from_utf8(body).unwrap())
}
