//! A cluster of `umbra serve` nodes on loopback for the SDK's failover tests: the test's own
//! PostgreSQL (Debian's `postgresql`, a fresh cluster in a temporary directory, run as the
//! `postgres` user when the test runs as root) and Redis (`redis-server`), N nodes on them, and
//! a TCP load balancer in front. crates/umbra-server/tests/common/cluster.rs has the server's own
//! version of this; the SDK cannot use it (it runs the binary cargo builds for that crate's tests).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::proxy::Proxy;
use super::rest::AppServer;
use super::server::{Server, TempDir, umbra_bin};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

pub struct Postgres {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Postgres {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .map(|d| d.flatten().map(|e| e.path().join("bin")).filter(|p| p.join("initdb").exists()).collect())
            .unwrap_or_default();
        versions.sort();
        let bin = versions.pop().expect("PostgreSQL is not installed (scripts/install-deps.sh --tests)");
        let dir = TempDir::new("pg");
        let as_postgres = is_root();
        if as_postgres {
            let st = Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            assert!(st.success(), "chown the PostgreSQL directory");
        }
        let pg = Postgres { dir, bin, port: free_port(), as_postgres };
        let data = pg.data();
        pg.run("initdb", &["-D", &data, "-U", "umbra", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"]);
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off",
            pg.port,
            pg.dir.path().display()
        );
        let log = pg.dir.path().join("log").display().to_string();
        pg.run("pg_ctl", &["-D", &data, "-l", &log, "-w", "-t", "60", "-o", &opts, "start"]);
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let out = self.command(tool).args(args).current_dir(self.dir.path()).output().unwrap();
        assert!(out.status.success(), "{tool} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// A new empty database, as a URL for `--database`.
    pub fn new_database(&self, name: &str) -> String {
        let port = self.port.to_string();
        self.run("createdb", &["-h", "127.0.0.1", "-p", &port, "-U", "umbra", name]);
        format!("postgres://umbra@127.0.0.1:{}/{name}?sslmode=disable", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self.command("pg_ctl").args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
    }
}

pub struct Redis {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

impl Redis {
    pub fn start() -> Redis {
        let dir = TempDir::new("redis");
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed (scripts/install-deps.sh --tests)");
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < end, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port, _dir: dir }
    }

    /// `GET key` over RESP.
    pub fn get(&self, key: &str) -> Option<String> {
        let mut c = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(format!("*2\r\n$3\r\nGET\r\n${}\r\n{key}\r\n", key.len()).as_bytes()).unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\r\n") {
            c.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        let len: i64 = String::from_utf8_lossy(&line).trim_end().strip_prefix('$')?.parse().ok()?;
        let mut body = vec![0u8; usize::try_from(len).ok()? + 2];
        c.read_exact(&mut body).unwrap();
        body.truncate(body.len() - 2);
        String::from_utf8(body).ok()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Cluster {
    pub nodes: Vec<Server>,
    pub lb: Proxy,
    pub app: AppServer,
    redis: Redis,
    _pg: Postgres,
    _data: TempDir,
}

impl Cluster {
    /// `n` nodes named n0, n1, … behind one load balancer; `app` is a project with the E2EE add-on
    /// whose REST calls go through the load balancer.
    pub fn start(n: usize) -> Cluster {
        let pg = Postgres::start();
        let redis = Redis::start();
        let database = pg.new_database(&format!("umbra_sdk_{}", std::process::id()));
        let redis_url = format!("redis://127.0.0.1:{}", redis.port);
        let nodes: Vec<Server> = (0..n)
            .map(|i| {
                let id = format!("n{i}");
                Server::start_with(
                    &["--database", &database],
                    "127.0.0.1:0",
                    &["--redis", &redis_url, "--node-id", &id],
                )
            })
            .collect();
        let lb = Proxy::balance(nodes.iter().map(|s| s.addr.clone()).collect());
        let data = TempDir::new("cluster-cli");
        let out = Command::new(umbra_bin())
            .arg("--data-dir")
            .arg(data.path())
            .args(["--database", &database, "project", "create", "--name", "failover", "--e2ee", "--output", "json"])
            .output()
            .expect("run umbra project create");
        assert!(out.status.success(), "project create: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).expect("project JSON");
        let app = AppServer {
            addr: lb.addr.clone(),
            api_key: v["api_key"].as_str().expect("api_key").to_string(),
            api_secret: v["api_secret"].as_str().expect("api_secret").to_string(),
        };
        Cluster { nodes, lb, app, redis, _pg: pg, _data: data }
    }

    /// The index of the node that hosts `session_id` now.
    pub fn home_of(&self, session_id: &str) -> Option<usize> {
        let id = self.redis.get(&format!("umbra:home:{session_id}"))?;
        id.strip_prefix('n')?.parse().ok()
    }

    pub fn logs(&self) -> String {
        self.nodes.iter().enumerate().map(|(i, n)| format!("==== n{i} ====\n{}\n", n.log())).collect()
    }
}
