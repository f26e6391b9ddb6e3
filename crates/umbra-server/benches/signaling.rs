//! Signaling under many concurrent connections, against a real `umbra serve` process on loopback.
//!
//! Measures, for N clients (default 2000) in ONE session (the worst case for fan-out):
//! - connect rate: WebSocket upgrade + token check + `welcome`, with 64 connects in flight;
//! - server memory per connection: growth of the server's resident set from before the first
//!   connect to after the last, divided by N (includes each connection's replay buffer, filled
//!   by the N²/2 `connection_created` events the joins cause);
//! - fan-out latency: a session-wide signal sent by one client, timed until each of the N
//!   clients has it (per delivery and until the last one), over R rounds.
//!
//! Run: `cargo bench -p umbra-server --bench signaling` (env: UMBRA_BENCH_CONNECTIONS,
//! UMBRA_BENCH_ROUNDS). Every loop is bounded in count and time; traffic stays on 127.0.0.1.
//!
//! With `UMBRA_BENCH_CLUSTER=1` it measures the cost of cluster mode instead (issue 14): the
//! same clients in sessions of 10 against one standalone node (SQLite), one node in cluster mode
//! (its own PostgreSQL and Redis, started by the bench as the tests start them) and three nodes,
//! the clients spread over the three in turn (so most sockets are relayed to their session's
//! node). Needs PostgreSQL and redis-server installed (scripts/install-deps.sh --tests).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const BIN: &str = env!("CARGO_BIN_EXE_umbra");
const CONCURRENT_CONNECTS: usize = 64;
const DEADLINE: Duration = Duration::from_secs(300);

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn http_post(addr: &str, path: &str, auth: &str, body: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nX-OPENTOK-AUTH: {auth}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Client {
    /// Signals received, as (round, time of arrival).
    arrivals: mpsc::UnboundedSender<(u64, Instant)>,
    created_seen: Arc<AtomicU64>,
}

async fn run_client(
    addr: String,
    token: String,
    c: Client,
    permit: tokio::sync::OwnedSemaphorePermit,
    mut to_send: mpsc::UnboundedReceiver<Value>,
) -> Result<(), String> {
    let (ws, _) = tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/v1/signaling"), None, true)
        .await
        .map_err(|e| e.to_string())?;
    let (mut tx, mut rx) = ws.split();
    tx.send(Message::Text(json!({"type": "connect", "v": 1, "token": token}).to_string().into()))
        .await
        .map_err(|e| e.to_string())?;
    let welcome = rx.next().await.ok_or("closed before welcome")?.map_err(|e| e.to_string())?;
    let welcome: Value =
        serde_json::from_str(welcome.to_text().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    if welcome["type"] != "welcome" {
        return Err(format!("refused: {welcome}"));
    }
    // The connect finished: let the next one start, and report it as a round-0 "arrival".
    drop(permit);
    let _ = c.arrivals.send((0, Instant::now()));
    let reader = async {
        while let Some(msg) = rx.next().await {
            let Ok(Message::Text(t)) = msg else { continue };
            let t = t.as_str();
            if t.contains("\"connection_created\"") {
                c.created_seen.fetch_add(1, Ordering::Relaxed);
            } else if t.contains("\"signal\"") {
                let now = Instant::now();
                let v: Value = serde_json::from_str(t).unwrap_or_default();
                if let Some(round) = v["data"].as_str().and_then(|d| d.parse::<u64>().ok()) {
                    let _ = c.arrivals.send((round, now));
                }
            }
        }
    };
    let writer = async {
        while let Some(v) = to_send.recv().await {
            if tx.send(Message::Text(v.to_string().into())).await.is_err() {
                break;
            }
        }
    };
    tokio::select! { _ = reader => {}, _ = writer => {} }
    Ok(())
}

/// Flags every measured node runs with.
const SERVE_FLAGS: [&str; 6] = [
    "--heartbeat-interval-secs",
    "300",
    "--heartbeat-timeout-secs",
    "600",
    // The worst case measured is one session of more connections than the default cap.
    "--max-connections-per-session",
    "1000000",
];

fn main() {
    // `cargo bench` passes `--bench`; there are no other arguments.
    let n = env_num("UMBRA_BENCH_CONNECTIONS", 2000);
    let rounds = env_num("UMBRA_BENCH_ROUNDS", 20) as u64;
    let started = Instant::now();
    if std::env::var("UMBRA_BENCH_CLUSTER").is_ok_and(|v| v == "1") {
        cluster_cost(n, rounds);
    } else {
        // One big session: every join and every signal reaches all n (the worst case).
        scenario(n, n, rounds, &standalone());
        // The same number of connections in sessions of 10 (a typical call size).
        scenario(n, 10.min(n), rounds, &standalone());
    }
    println!("total run {:.1} s", started.elapsed().as_secs_f64());
    let _ = std::io::stdout().flush();
}

/// What a scenario drives: the nodes' addresses (clients take them in turn) and processes.
struct Target {
    label: String,
    addrs: Vec<String>,
    pids: Vec<u32>,
    key: String,
    secret: String,
    /// Keeps servers (and their PostgreSQL and Redis) alive until the scenario ends.
    _keep: Box<dyn std::any::Any>,
}

/// One `umbra serve` on SQLite in a fresh directory.
fn standalone() -> Target {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["project", "create", "--name", "bench", "--output", "json"])
        .output()
        .unwrap();
    let project: Value = serde_json::from_slice(&out.stdout).expect("project json");
    let mut server = Command::new(BIN)
        .arg("--data-dir")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-media"])
        .args(SERVE_FLAGS)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = server.id();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("umbra listening on http://").expect("listening line").to_owned();
    /// The server, then its directory (removed after it exits).
    struct Kill(std::process::Child, #[allow(dead_code)] tempfile::TempDir);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
            let _ = self.0.wait();
        }
    }
    Target {
        label: "1 node, standalone (SQLite)".into(),
        addrs: vec![addr],
        pids: vec![pid],
        key: project["api_key"].as_str().unwrap().to_owned(),
        secret: project["api_secret"].as_str().unwrap().to_owned(),
        _keep: Box::new(Kill(server, dir)),
    }
}

/// `nodes` nodes in cluster mode on their own PostgreSQL and Redis.
fn cluster(nodes: usize) -> Target {
    let mut flags = vec!["--no-media"];
    flags.extend(SERVE_FLAGS);
    let c = common::cluster::Cluster::start(nodes, &flags);
    Target {
        label: format!("{nodes} node(s), cluster mode (PostgreSQL + Redis)"),
        addrs: (0..nodes).map(|i| c.addr(i)).collect(),
        pids: (0..nodes).map(|i| c.node(i).pid()).collect(),
        key: c.project.key.clone(),
        secret: c.project.secret.clone(),
        _keep: Box::new(c),
    }
}

/// Sessions of 10: standalone, then one and three nodes in cluster mode, alternating order over
/// two passes so that neither side always runs on a warmer machine.
fn cluster_cost(n: usize, rounds: u64) {
    let mut rows = Vec::new();
    for pass in 0..2 {
        let order: [usize; 3] = if pass == 0 { [0, 1, 3] } else { [3, 1, 0] };
        for nodes in order {
            let target = if nodes == 0 { standalone() } else { cluster(nodes) };
            rows.push((target.label.clone(), scenario(n, 10.min(n), rounds, &target)));
        }
    }
    println!("\nsummary (sessions of 10, {n} clients, {rounds} signal rounds):");
    println!("| setup | connects/s | fan-out per delivery p50 / p99 | until the last p50 / max |");
    println!("| --- | --- | --- | --- |");
    for (label, r) in rows {
        println!(
            "| {label} | {:.0} | {:.2} / {:.2} ms | {:.2} / {:.2} ms |",
            r.rate, r.p50, r.p99, r.last50, r.last_max
        );
    }
}

struct Figures {
    rate: f64,
    p50: f64,
    p99: f64,
    last50: f64,
    last_max: f64,
}

fn scenario(n: usize, session_size: usize, rounds: u64, target: &Target) -> Figures {
    let sessions = n.div_ceil(session_size);
    let (key, secret) = (target.key.clone(), target.secret.clone());
    let addr = target.addrs[0].clone();
    let pid = target.pids[0];

    let now = umbra_server::clock::now_secs();
    let auth = umbra_server::jwt::sign_hs256(
        &json!({"iss": key, "ist": "project", "iat": now, "exp": now + 120}),
        secret.as_bytes(),
    );
    let sids: Vec<String> = (0..sessions)
        .map(|_| {
            let body = http_post(&addr, "/session/create", &auth, "p2p.preference=enabled");
            let created: Value = serde_json::from_str(&body).expect("session json");
            created[0]["session_id"].as_str().unwrap().to_owned()
        })
        .collect();
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            umbra_server::token::sign_jwt(
                &key,
                &secret,
                &sids[i / session_size],
                umbra_server::model::Role::Publisher,
                now + 3600,
                None,
            )
        })
        .collect();
    let receivers = session_size.min(n);

    let rss_before: u64 = target.pids.iter().map(|p| rss_kib(*p)).sum();
    let addrs = target.addrs.clone();
    let pids = target.pids.clone();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let report = rt.block_on(async move {
        let created_seen = Arc::new(AtomicU64::new(0));
        let (arr_tx, mut arr_rx) = mpsc::unbounded_channel::<(u64, Instant)>();
        let mut senders = Vec::with_capacity(n);
        let mut handles = Vec::with_capacity(n);
        let sem = Arc::new(tokio::sync::Semaphore::new(CONCURRENT_CONNECTS));
        let t0 = Instant::now();
        for (i, token) in tokens.into_iter().enumerate() {
            let permit = sem.clone().acquire_owned().await.unwrap();
            let (stx, srx) = mpsc::unbounded_channel();
            senders.push(stx);
            let client = Client { arrivals: arr_tx.clone(), created_seen: created_seen.clone() };
            handles.push(tokio::spawn(run_client(addrs[i % addrs.len()].clone(), token, client, permit, srx)));
        }
        // Count welcomes (round-0 arrivals).
        let mut connected = 0usize;
        let deadline = tokio::time::Instant::now() + DEADLINE;
        while connected < n {
            match tokio::time::timeout_at(deadline, arr_rx.recv()).await {
                Ok(Some((0, _))) => connected += 1,
                Ok(Some(_)) => {}
                _ => panic!("only {connected} of {n} clients connected in time"),
            }
        }
        let connect_elapsed = t0.elapsed();
        // Let the connection_created events settle: s(s-1)/2 per session.
        let full = (n / session_size) as u64;
        let rest = (n % session_size) as u64;
        let s = session_size as u64;
        let expected = full * s * (s - 1) / 2 + rest * rest.saturating_sub(1) / 2;
        let settle_start = Instant::now();
        while created_seen.load(Ordering::Relaxed) < expected {
            assert!(
                settle_start.elapsed() < DEADLINE,
                "events did not settle: {} of {expected}",
                created_seen.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let settle = settle_start.elapsed();

        let mut per_delivery = Vec::with_capacity(receivers * rounds as usize);
        let mut to_last = Vec::with_capacity(rounds as usize);
        for round in 1..=rounds {
            let sent = Instant::now();
            senders[0]
                .send(json!({"type": "signal", "id": round, "signal_type": "bench", "data": round.to_string()}))
                .unwrap();
            let mut got = 0usize;
            let mut last = sent;
            while got < receivers {
                match tokio::time::timeout(Duration::from_secs(30), arr_rx.recv()).await {
                    Ok(Some((r, at))) if r == round => {
                        got += 1;
                        per_delivery.push(at - sent);
                        last = last.max(at);
                    }
                    Ok(Some(_)) => {}
                    _ => panic!("round {round}: only {got} of {receivers} received the signal"),
                }
            }
            to_last.push(last - sent);
        }
        per_delivery.sort();
        to_last.sort();
        let rss_connected: u64 = pids.iter().map(|p| rss_kib(*p)).sum();
        drop(senders);
        for h in handles {
            h.abort();
        }
        (connect_elapsed, settle, per_delivery, to_last, expected, rss_connected)
    });
    let (connect_elapsed, settle, per_delivery, to_last, events, rss_after) = report;
    let _ = pid;

    let rate = n as f64 / connect_elapsed.as_secs_f64();
    println!(
        "{n} WebSocket clients in {sessions} relayed session(s) of {session_size}, {} (`umbra serve`, release), loopback:",
        target.label
    );
    println!(
        "  connect: {n} in {:.2} s = {rate:.0} connects/s ({CONCURRENT_CONNECTS} in flight; upgrade + JWT check + welcome + join fan-out)",
        connect_elapsed.as_secs_f64()
    );
    println!(
        "  join events: {events} connection_created delivered, the last {:.2} s after the last connect",
        settle.as_secs_f64()
    );
    println!(
        "  server RSS: {:.1} MiB before, {:.1} MiB with {n} connections = {:.1} KiB per connection",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        (rss_after.saturating_sub(rss_before)) as f64 / n as f64
    );
    println!(
        "  signal fan-out to {receivers} ({} rounds): per delivery p50 {:.2} ms, p99 {:.2} ms; until the last receiver p50 {:.2} ms, max {:.2} ms",
        to_last.len(),
        percentile(&per_delivery, 0.5).as_secs_f64() * 1e3,
        percentile(&per_delivery, 0.99).as_secs_f64() * 1e3,
        percentile(&to_last, 0.5).as_secs_f64() * 1e3,
        to_last.last().copied().unwrap_or_default().as_secs_f64() * 1e3
    );
    Figures {
        rate,
        p50: percentile(&per_delivery, 0.5).as_secs_f64() * 1e3,
        p99: percentile(&per_delivery, 0.99).as_secs_f64() * 1e3,
        last50: percentile(&to_last, 0.5).as_secs_f64() * 1e3,
        last_max: to_last.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    }
}
