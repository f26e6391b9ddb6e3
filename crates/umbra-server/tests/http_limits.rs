//! The HTTP layer under attack-shaped load, against the real `umbra` binary on loopback (ports
//! picked by the kernel): slow headers, idle sockets past the open-file limit, large bodies
//! without credentials, oversized bodies, the `Host` allow-list, static-file escapes, extreme token
//! times, and demo rooms that expire. Each test is bounded to a few seconds.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

/// `umbra serve` with its PID at hand (for /proc), optionally under an open-file limit.
struct Umbra {
    child: Child,
    addr: String,
    log: PathBuf,
}

impl Umbra {
    fn start(data_dir: &Path, extra: &[&str], nofile: Option<u32>) -> Umbra {
        std::fs::create_dir_all(data_dir).unwrap();
        let log = data_dir.join("server.log");
        let mut cmd = match nofile {
            // prlimit execs the server, so the child's PID is the server's.
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = cmd
            .arg("--data-dir")
            .arg(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--no-media"])
            .args(extra)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start umbra");
        let mut out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut b = [0u8; 1];
            while out.read(&mut b).is_ok_and(|n| n == 1) && b[0] != b'\n' {
                line.push(b[0]);
            }
            let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("server started");
        let addr = match line.strip_prefix("umbra listening on http://") {
            Some(a) => a.to_owned(),
            None => panic!("no listening line ({line:?}): {}", std::fs::read_to_string(&log).unwrap_or_default()),
        };
        Umbra { child, addr, log }
    }

    fn rss_mb(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap();
        kb / 1024
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Umbra {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET /healthz` on a fresh connection; the time to a 200.
fn healthz(addr: &str) -> Duration {
    let start = Instant::now();
    let r = http(addr, "GET", "/healthz", &[], b"");
    assert_eq!(r.status, 200);
    start.elapsed()
}

/// Sends `request` as is and returns the status and body (the server closes or the read times out).
fn raw(addr: &str, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

/// Whether the server has closed `s` (EOF or reset) — reads whatever it sent first.
fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return false,
            Err(_) => return true,
        }
    }
}

#[test]
fn slowloris_connections_are_closed_at_the_header_timeout_and_do_not_starve_health_checks() {
    let dir = tmpdir();
    let server = Umbra::start(dir.path(), &["--header-read-timeout-secs", "3"], None);
    let start = Instant::now();
    let mut slow: Vec<TcpStream> = (0..200)
        .map(|_| {
            let mut s = TcpStream::connect(&server.addr).unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
            s.set_nonblocking(true).unwrap();
            s
        })
        .collect();
    let mut checks = Vec::new();
    // Drip a header byte on every connection, as slowloris does, while checking health.
    while start.elapsed() < Duration::from_millis(2000) {
        for s in &mut slow {
            let _ = s.write(b"X");
        }
        checks.push(healthz(&server.addr));
        std::thread::sleep(Duration::from_millis(200));
    }
    let worst = checks.iter().copied().max().unwrap_or_default();
    let slow_checks = checks.iter().filter(|d| **d > Duration::from_millis(250)).count();
    eprintln!("slowloris: {} health checks, worst {worst:?}, {slow_checks} over 250 ms", checks.len());
    // Starved, a check would wait for the slow connections to be cut at 3 s. One slow check is
    // tolerated: CI once saw one at 1.006 s (a SYN retransmission timeout is 1 s) while the
    // other tests of this file loaded the 2 cores.
    assert!(worst < Duration::from_secs(2), "/healthz took {worst:?}: {checks:?}");
    assert!(slow_checks <= 1, "{slow_checks} health checks over 250 ms: {checks:?}");
    // All closed by the 3 s header timeout (plus scheduling slack), though they kept sending.
    let deadline = start + Duration::from_millis(4500);
    while Instant::now() < deadline {
        for s in &mut slow {
            let _ = s.write(b"X");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let open = slow.iter_mut().map(closed_by_server).filter(|closed| !closed).count();
    assert_eq!(open, 0, "{open} slow connections still open 4.5 s after connecting");
}

#[test]
fn idle_keep_alive_connections_close_at_the_header_timeout() {
    // What hyper 1.x does (and docs/server.md promises): the header timer restarts when a
    // connection goes idle after a response, so it also bounds keep-alive idleness.
    let dir = tmpdir();
    let server = Umbra::start(dir.path(), &["--header-read-timeout-secs", "1"], None);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let idle_from = Instant::now();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    let idle = idle_from.elapsed();
    assert!(idle >= Duration::from_millis(800) && idle < Duration::from_secs(3), "closed after {idle:?}");
}

#[test]
fn a_slow_request_body_gets_408_at_the_request_timeout() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Umbra::start(dir.path(), &["--request-timeout-secs", "1"], None);
    let mut s = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /session/create HTTP/1.1\r\nHost: 127.0.0.1\r\nX-OPENTOK-AUTH: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ne2ee=false",
        auth(&p)
    );
    s.write_all(head.as_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("3005") && text.contains("request_timeout_secs"), "{text}");
    assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
}

#[test]
fn idle_sockets_past_the_open_file_limit_leave_the_server_reachable() {
    let dir = tmpdir();
    let mut server = Umbra::start(dir.path(), &[], Some(1024));
    // Logged just after the listening line: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("max_connections=896") {
        assert!(Instant::now() < deadline, "{}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Connects beyond the accept queue wait for the kernel; they need not all succeed.
    let idle: Vec<TcpStream> = (0..1100)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_millis(500)).ok())
        .collect();
    assert!(idle.len() > 1000, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(healthz(&server.addr));
    }
    eprintln!("{} idle sockets under nofile=1024: worst /healthz {worst:?}", idle.len());
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");
    assert!(server.alive());
    let log = server.log();
    assert!(log.contains("connection limit reached"), "{log}");
    assert!(log.matches("connection limit reached").count() < 5, "not rate-limited: {log}");
    drop(idle);
}

#[test]
fn running_out_of_descriptors_is_logged_and_survived() {
    // A cap above the open-file limit (misconfigured): accept fails with EMFILE, and the server
    // frees descriptors by closing idle connections instead of spinning or going deaf.
    let dir = tmpdir();
    let mut server = Umbra::start(dir.path(), &["--max-connections", "10000"], Some(256));
    let idle: Vec<TcpStream> = (0..400)
        .filter_map(|_| TcpStream::connect_timeout(&server.addr.parse().unwrap(), Duration::from_millis(500)).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut worst = Duration::ZERO;
    for _ in 0..3 {
        worst = worst.max(healthz(&server.addr));
    }
    eprintln!("{} idle sockets under nofile=256, cap 10000: worst /healthz {worst:?}", idle.len());
    assert!(worst < Duration::from_secs(1), "/healthz took {worst:?}");
    assert!(server.alive());
    let log = server.log();
    assert!(log.contains("cannot accept connections"), "{log}");
    assert!(log.matches("cannot accept connections").count() < 5, "not rate-limited: {log}");
}

#[test]
fn unauthenticated_large_bodies_are_refused_before_they_are_read() {
    const BODY: usize = 1_900_000;
    let dir = tmpdir();
    let server = Umbra::start(dir.path(), &["--demo"], None);
    std::thread::sleep(Duration::from_millis(200));
    let baseline = server.rss_mb();
    // Half to the REST API without credentials, half to the public demo token endpoint.
    let mut socks: Vec<(TcpStream, usize)> = (0..300)
        .map(|i| {
            let path = if i % 2 == 0 { "/session/create" } else { "/demo/token" };
            let mut s = TcpStream::connect(&server.addr).unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {BODY}\r\n\r\n"
            );
            s.write_all(head.as_bytes()).unwrap();
            s.set_nonblocking(true).unwrap();
            (s, 0)
        })
        .collect();
    let chunk = vec![b'x'; 256 * 1024];
    let start = Instant::now();
    // Everything but the last byte, as far as the server lets it in.
    while start.elapsed() < Duration::from_secs(3) {
        for (s, sent) in &mut socks {
            while *sent < BODY - 1 {
                match s.write(&chunk[..chunk.len().min(BODY - 1 - *sent)]) {
                    Ok(n) => *sent += n,
                    Err(_) => break,
                }
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let peak = server.rss_mb();
    let mut statuses = std::collections::BTreeMap::<String, usize>::new();
    for (s, _) in &mut socks {
        s.set_nonblocking(false).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 12];
        let status = match s.read(&mut buf) {
            Ok(n) if n >= 12 => String::from_utf8_lossy(&buf[9..12]).into_owned(),
            _ => "none".into(),
        };
        *statuses.entry(status).or_default() += 1;
    }
    let sent_mb = socks.iter().map(|(_, n)| n).sum::<usize>() / 1_000_000;
    eprintln!("300 withheld bodies ({sent_mb} MB written): RSS {baseline} -> {peak} MB; answers {statuses:?}");
    assert_eq!(statuses.get("403"), Some(&150), "{statuses:?}");
    assert_eq!(statuses.get("413"), Some(&150), "{statuses:?}");
    assert!(peak < baseline + 50, "RSS grew from {baseline} to {peak} MB");
}

#[test]
fn oversized_bodies_get_413_with_a_json_error_even_when_authenticated() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Umbra::start(dir.path(), &[], None);
    let a = auth(&p);
    let h = [("X-OPENTOK-AUTH", a.as_str()), ("Content-Type", "application/x-www-form-urlencoded")];
    let big = format!("archiveName={}", "x".repeat(20_000));
    let r = http(&server.addr, "POST", "/session/create", &h, big.as_bytes());
    assert_eq!(r.status, 413);
    assert_eq!(r.code(), 3004);
    assert!(r.json()["message"].as_str().unwrap().contains("8192 bytes"), "{}", r.json());
    // Within the limit: still the ordinary parameter check.
    let r = http(&server.addr, "POST", "/session/create", &h, b"p2p.preference=disabled");
    assert_eq!(r.status, 200);
    let sid = r.json()[0]["session_id"].as_str().unwrap().to_owned();
    let signal = format!("/v2/project/{}/session/{sid}/signal", p.key);
    // The largest signal the protocol allows, fully escaped, fits; a megabyte does not.
    let ok = json!({"type": "t", "data": "\u{1}".repeat(8192)}).to_string();
    assert!(ok.len() > 40_000);
    let hj = [("X-OPENTOK-AUTH", a.as_str()), ("Content-Type", "application/json")];
    assert_eq!(http(&server.addr, "POST", &signal, &hj, ok.as_bytes()).status, 204);
    let r = http(&server.addr, "POST", &signal, &hj, &vec![b' '; 1 << 20]);
    assert_eq!((r.status, r.code()), (413, 3004));
    // Without a Content-Length (chunked), the body is cut off at the limit.
    let chunk = "x".repeat(4096);
    let mut req = format!(
        "POST /session/create HTTP/1.1\r\nHost: 127.0.0.1\r\nX-OPENTOK-AUTH: {a}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for _ in 0..4 {
        req.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    req.push_str("0\r\n\r\n");
    let (status, body) = raw(&server.addr, &req);
    assert_eq!(status, 413, "{body}");
    // Headers are bounded too (64 KiB of buffer per connection).
    let big = format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {}\r\n\r\n", "x".repeat(100_000));
    assert_eq!(raw(&server.addr, &big).0, 431);
}

#[test]
fn host_allow_list_refuses_foreign_names_on_browser_routes() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Umbra::start(dir.path(), &["--demo", "--allowed-host", "video.example"], None);
    let get = |path: &str, host: &str| {
        raw(&server.addr, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"))
    };
    for path in ["/", "/sdk/umbra.js", "/demo/app.js", "/v1/signaling"] {
        let (status, body) = get(path, "rebind.attacker.example:8080");
        assert_eq!(status, 421, "{path}: {body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["code"], 3006);
        assert!(v["message"].as_str().unwrap().contains("--allowed-host"), "{v}");
    }
    let (status, _) = raw(
        &server.addr,
        "POST /demo/token HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n\
         Content-Length: 15\r\nConnection: close\r\n\r\n{\"room\":\"abcd\"}",
    );
    assert_eq!(status, 421);
    // The listen address, loopback names, other IP literals and the flag's names pass.
    for host in [server.addr.as_str(), "localhost:8080", "[::1]:8080", "10.1.2.3", "VIDEO.example", "video.example."] {
        let (status, body) = get("/sdk/umbra.js", host);
        assert!(status == 200 || status == 404, "{host}: {status} {body}");
    }
    let (status, body) = raw(
        &server.addr,
        "POST /demo/token HTTP/1.1\r\nHost: video.example\r\nContent-Type: application/json\r\n\
         Content-Length: 15\r\nConnection: close\r\n\r\n{\"room\":\"abcd\"}",
    );
    assert_eq!(status, 200, "{body}");
    // The signed REST API and the probes are not guarded.
    assert_eq!(get("/healthz", "evil.example").0, 200);
    let req = format!(
        "POST /session/create HTTP/1.1\r\nHost: evil.example\r\nX-OPENTOK-AUTH: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        auth(&p)
    );
    assert_eq!(raw(&server.addr, &req).0, 200);
    // `*` turns the check off.
    let any = Umbra::start(&dir.path().join("any"), &["--allowed-host", "*"], None);
    let (status, _) = raw(&any.addr, "GET /sdk/x.js HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(status, 404);
}

#[cfg(unix)]
#[test]
fn static_files_never_leave_the_web_directory_and_directories_are_404() {
    use std::os::unix::fs::symlink;
    let dir = tmpdir();
    let real = dir.path().join("real-web");
    std::fs::create_dir_all(real.join("dist/subdir")).unwrap();
    std::fs::create_dir_all(real.join("demo")).unwrap();
    std::fs::write(real.join("dist/umbra.js"), "var OT = {};").unwrap();
    std::fs::write(real.join("secret.txt"), "outside dist").unwrap();
    std::fs::write(real.join("dist/big.js"), vec![b'/'; 3 << 20]).unwrap();
    std::fs::write(dir.path().join("far.txt"), "outside the web dir").unwrap();
    symlink(real.join("secret.txt"), real.join("dist/up.js")).unwrap();
    symlink(dir.path().join("far.txt"), real.join("dist/far.js")).unwrap();
    symlink("/etc/hostname", real.join("dist/etc.js")).unwrap();
    symlink("umbra.js", real.join("dist/alias.js")).unwrap();
    symlink(real.join("dist/subdir"), real.join("dist/dirlink")).unwrap();
    symlink("missing.js", real.join("demo/dangling.js")).unwrap();
    // The web directory itself may be a symlink.
    let web = dir.path().join("web");
    symlink(&real, &web).unwrap();
    let server = Umbra::start(&dir.path().join("data"), &["--web-dir", web.to_str().unwrap()], None);
    assert_eq!(http(&server.addr, "GET", "/sdk/umbra.js", &[], b"").body, b"var OT = {};");
    assert_eq!(http(&server.addr, "GET", "/sdk/alias.js", &[], b"").body, b"var OT = {};", "a link inside is fine");
    // Large files go out whole (the connection's 64 KiB buffer bounds headers, not responses).
    assert_eq!(http(&server.addr, "GET", "/sdk/big.js", &[], b"").body.len(), 3 << 20);
    for path in ["/sdk/up.js", "/sdk/far.js", "/sdk/etc.js", "/sdk/subdir", "/sdk/dirlink", "/demo/dangling.js"] {
        let r = http(&server.addr, "GET", path, &[], b"");
        assert_eq!((r.status, r.code()), (404, 5006), "{path}: {}", String::from_utf8_lossy(&r.body));
        assert!(!String::from_utf8_lossy(&r.body).contains("outside"), "{path}");
    }
}

#[test]
fn client_tokens_with_extreme_or_too_long_lifetimes_are_refused_without_overflow() {
    let dir = tmpdir();
    let p = create_project(dir.path(), "p", false);
    let server = Umbra::start(dir.path(), &[], None);
    let sid = {
        let r = post_form(&server.addr, "/session/create", Some(&auth(&p)), "");
        r.json()[0]["session_id"].as_str().unwrap().to_owned()
    };
    let refused = |token: String| {
        let (_ws, first) = Ws::connect(&server.addr, &token, None);
        assert_eq!(first["type"], "error", "{first}");
        first
    };
    let t1 =
        |exp: &str| umbra_server::token::sign_t1(&p.key, &p.secret, &format!("session_id={sid}&expire_time={exp}"));
    let jwt = |exp: i64| {
        umbra_server::jwt::sign_hs256(
            &json!({"iss": p.key, "ist": "project", "iat": now(), "exp": exp, "scope": "session.connect",
                    "session_id": sid, "role": "publisher"}),
            p.secret.as_bytes(),
        )
    };
    for e in [refused(t1(&i64::MAX.to_string())), refused(jwt(i64::MAX)), refused(jwt(now() + 31 * 86_400))] {
        assert!(e["message"].as_str().unwrap_or_default().contains("30 days"), "{e}");
        assert_eq!(e["code"], "token_lifetime_too_long", "{e}");
    }
    let e = refused(jwt(i64::MIN));
    assert_eq!(e["code"], "token_expired", "{e}");
    let (_ws, w) = Ws::connect(&server.addr, &jwt(now() + 29 * 86_400), None);
    assert_eq!(w["type"], "welcome", "{w}");
    // REST auth with extreme times: a 403, not an overflow.
    for exp in [i64::MAX, i64::MIN] {
        let h = umbra_server::jwt::sign_hs256(
            &json!({"iss": p.key, "ist": "project", "iat": now(), "exp": exp}),
            p.secret.as_bytes(),
        );
        let r = post_form(&server.addr, "/session/create", Some(&h), "");
        assert_eq!(r.status, 403, "{exp}");
    }
    // The CLI refuses what the server would.
    let out = cli(dir.path(), &["token", "--project", "p", "--session-id", &sid, "--ttl-secs", "2592001"]);
    assert!(!out.ok && out.stderr.contains("2592000"), "{}", out.stderr);
    let out = cli(dir.path(), &["token", "--project", "p", "--session-id", &sid, "--ttl-secs", "2592000"]);
    assert!(out.ok, "{}", out.stderr);
    let (_ws, w) = Ws::connect(&server.addr, out.stdout.trim(), None);
    assert_eq!(w["type"], "welcome", "{w}");
}

#[test]
fn demo_rooms_expire_with_their_sessions_while_live_ones_stay() {
    let dir = tmpdir();
    let server = Umbra::start(dir.path(), &["--demo", "--demo-room-expiry-secs", "1"], None);
    let token = |room: &str| {
        let r = http(
            &server.addr,
            "POST",
            "/demo/token",
            &[("Content-Type", "application/json")],
            json!({"room": room}).to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()
    };
    let idle = token("idle room");
    let live = token("live room");
    let (_ws, w) = Ws::join(&server.addr, live["token"].as_str().unwrap());
    assert_eq!(w["session_id"], live["sessionId"]);
    std::thread::sleep(Duration::from_millis(2500));
    // The idle room's session is gone (its tokens with it); the name maps to a new one.
    let (_ws2, e) = Ws::connect(&server.addr, idle["token"].as_str().unwrap(), None);
    assert_eq!(e["type"], "error", "{e}");
    assert_ne!(token("idle room")["sessionId"], idle["sessionId"]);
    assert_eq!(token("live room")["sessionId"], live["sessionId"], "a live room keeps its session");
    assert!(server.log().contains("demo rooms expired"), "{}", server.log());
}
