//! The Umbra backend: what an app server does (a routed session through the REST API, a client
//! token per participant, HS256 as the OpenTok server SDKs sign them), then docs/signaling.md
//! over a WebSocket per participant: `connect`, `publish` / `subscribe` with an SDP offer, the
//! router's answer in the `ack`, `ping` every heartbeat interval, `leave` at the end.

use std::io::ErrorKind;
use std::net::{IpAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::http;
use crate::peer::Peer;

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

pub fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let mut n = 0u32;
        for (i, b) in chunk.iter().enumerate() {
            n |= u32::from(*b) << (16 - 8 * i);
        }
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn jwt(claims: &Value, secret: &str) -> String {
    let input = format!("{}.{}", b64url(br#"{"alg":"HS256","typ":"JWT"}"#), b64url(claims.to_string().as_bytes()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(sig.as_ref()))
}

pub struct Umbra {
    url: String,
    api_key: String,
    api_secret: String,
    session_id: String,
    sockets: Vec<WebSocket<TcpStream>>,
    next_id: u64,
    keepalive: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

/// See [`Umbra::overload_counters`].
#[derive(Debug, Clone, Copy)]
pub struct OverloadCounters {
    pub frames_dropped: u64,
    pub fell_behind: u64,
    pub late_datagrams: u64,
}

impl Umbra {
    /// Creates a routed session (without E2EE: the load client sends plain frames; the router
    /// forwards the same way either way).
    pub fn new(url: &str, api_key: &str, api_secret: &str) -> Result<Self, String> {
        let url = url.trim_end_matches('/').to_string();
        let now = unix_now();
        let auth = jwt(
            &json!({"iss": api_key, "ist": "project", "iat": now, "exp": now + 180, "jti": format!("loadgen{now}")}),
            api_secret,
        );
        let (status, body) = http::request(
            "POST",
            &format!("{url}/session/create"),
            &[("X-OPENTOK-AUTH", &auth)],
            Some(("application/x-www-form-urlencoded", b"p2p.preference=disabled")),
            Duration::from_secs(10),
        )?;
        if status != 200 {
            return Err(format!("session/create: HTTP {status}: {body}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("session/create: {e}: {body}"))?;
        let session_id =
            v[0]["session_id"].as_str().ok_or_else(|| format!("session/create: no session_id in {body}"))?.to_string();
        Ok(Self {
            url,
            api_key: api_key.into(),
            api_secret: api_secret.into(),
            session_id,
            sockets: Vec::new(),
            next_id: 1,
            keepalive: None,
        })
    }

    /// The router's overload counters from the server's `/metrics`: frames not sent to
    /// subscribers that fell behind, times one did, and datagrams a worker handled late (all
    /// totals since start). `None` when the scrape fails or lacks them (`--no-media`).
    pub fn overload_counters(&self) -> Option<OverloadCounters> {
        let (status, body) =
            http::request("GET", &format!("{}/metrics", self.url), &[], None, Duration::from_secs(5)).ok()?;
        if status != 200 {
            return None;
        }
        let value = |name: &str| -> Option<u64> {
            body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        };
        Some(OverloadCounters {
            frames_dropped: value("umbra_router_frames_dropped_overload_total")?,
            fell_behind: value("umbra_router_subscriber_fell_behind_total")?,
            late_datagrams: value("umbra_router_late_datagrams_total")?,
        })
    }

    fn token(&self, role: &str, data: &str) -> String {
        let now = unix_now();
        jwt(
            &json!({
                "iss": self.api_key, "ist": "project", "iat": now, "exp": now + 3600,
                "scope": "session.connect", "session_id": self.session_id, "role": role,
                "nonce": format!("{data}-{now}"), "connection_data": data,
            }),
            &self.api_secret,
        )
    }

    /// Opens a signaling socket and completes the handshake (welcome and its snapshots).
    fn connect(&mut self, role: &str, data: &str) -> Result<WebSocket<TcpStream>, String> {
        let host = http::split_url(&self.url)?.0;
        let stream = TcpStream::connect(&host).map_err(|e| format!("connect {host}: {e}"))?;
        stream.set_nodelay(true).ok();
        stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
        let (mut ws, _) = tungstenite::client(format!("ws://{host}/v1/signaling").as_str(), stream)
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        let connect =
            json!({"type": "connect", "v": 1, "token": self.token(role, data), "session_id": self.session_id});
        ws.send(Message::text(connect.to_string())).map_err(|e| format!("send connect: {e}"))?;
        let welcome = read_until(&mut ws, |v| v["type"] == "welcome" || v["type"] == "error")?;
        if welcome["type"] == "error" {
            return Err(format!("connect refused: {welcome}"));
        }
        Ok(ws)
    }

    /// Sends a request and waits for its `ack` (or `error`).
    fn request(&mut self, ws: &mut WebSocket<TcpStream>, mut msg: Value) -> Result<Value, String> {
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        let kind = msg["type"].as_str().unwrap_or("?").to_string();
        ws.send(Message::text(msg.to_string())).map_err(|e| format!("send {kind}: {e}"))?;
        let reply = read_until(ws, |v| (v["type"] == "ack" || v["type"] == "error") && v["id"] == json!(id))?;
        if reply["type"] == "error" {
            return Err(format!("{kind} refused: {reply}"));
        }
        Ok(reply)
    }

    /// The publisher's connection: publishes audio + video; returns its peer and stream id.
    pub fn publish(&mut self, bind: IpAddr) -> Result<(Peer, String), String> {
        let mut ws = self.connect("publisher", "loadgen-publisher")?;
        let mut peer = Peer::new(bind)?;
        let offer = peer.create_offer(true)?;
        let ack = self.request(
            &mut ws,
            json!({"type": "publish",
                   "stream": {"name": "loadgen", "has_audio": true, "has_video": true, "video_type": "camera"},
                   "sdp_offer": offer}),
        )?;
        let answer = ack["sdp_answer"].as_str().ok_or_else(|| format!("publish ack without an answer: {ack}"))?;
        peer.accept_answer(answer)?;
        let stream_id = ack["stream_id"].as_str().ok_or("publish ack without stream_id")?.to_string();
        self.sockets.push(ws);
        Ok((peer, stream_id))
    }

    /// A subscriber's own connection (a token each: the server caps connections per token).
    pub fn subscribe(&mut self, bind: IpAddr, stream_id: &str, index: usize) -> Result<Peer, String> {
        let mut ws = self.connect("subscriber", &format!("loadgen-sub-{index}"))?;
        let mut peer = Peer::new(bind)?;
        let offer = peer.create_offer(false)?;
        let ack = self.request(&mut ws, json!({"type": "subscribe", "stream_id": stream_id, "sdp_offer": offer}))?;
        let answer = ack["sdp_answer"].as_str().ok_or_else(|| format!("subscribe ack without an answer: {ack}"))?;
        peer.accept_answer(answer)?;
        self.sockets.push(ws);
        Ok(peer)
    }

    /// From now on a thread drains every socket and pings each every 5 s (the server's
    /// heartbeat is 10 s, its timeout 30 s).
    pub fn start_keepalive(&mut self) {
        let stop = Arc::new(AtomicBool::new(false));
        let mut sockets = std::mem::take(&mut self.sockets);
        for ws in &sockets {
            let _ = ws.get_ref().set_nonblocking(true);
        }
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut last_ping = Instant::now();
            let mut n = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let ping = last_ping.elapsed() > Duration::from_secs(5);
                if ping {
                    last_ping = Instant::now();
                }
                for ws in &mut sockets {
                    if ping {
                        n += 1;
                        let _ = ws.send(Message::text(json!({"type": "ping", "id": format!("ka{n}")}).to_string()));
                    }
                    let _ = ws.flush();
                    // Bounded: at most 64 messages per socket per round.
                    for _ in 0..64 {
                        match ws.read() {
                            Ok(_) => continue,
                            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                            Err(_) => break,
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            for ws in &mut sockets {
                let _ = ws.get_ref().set_nonblocking(false);
                let _ = ws.get_ref().set_write_timeout(Some(Duration::from_secs(2)));
                let _ = ws.send(Message::text(r#"{"type":"leave"}"#));
                let _ = ws.close(None);
                let _ = ws.flush();
            }
        });
        self.keepalive = Some((stop, handle));
    }

    pub fn teardown(&mut self) {
        if let Some((stop, handle)) = self.keepalive.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        for ws in &mut self.sockets {
            let _ = ws.send(Message::text(r#"{"type":"leave"}"#));
            let _ = ws.close(None);
        }
    }
}

/// Reads messages until one satisfies `want` (events and other replies are skipped).
fn read_until(ws: &mut WebSocket<TcpStream>, want: impl Fn(&Value) -> bool) -> Result<Value, String> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        match ws.read() {
            Ok(Message::Text(t)) => {
                let v: Value = serde_json::from_str(t.as_str()).map_err(|e| format!("bad message {t}: {e}"))?;
                if want(&v) {
                    return Ok(v);
                }
            }
            Ok(Message::Close(f)) => return Err(format!("signaling closed: {f:?}")),
            Ok(_) => {}
            Err(e) => return Err(format!("signaling read: {e}")),
        }
    }
    Err("no reply within 15 s".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64url_matches_rfc_4648() {
        for (p, e) in [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(super::b64url(p.as_bytes()), e);
        }
    }
}
