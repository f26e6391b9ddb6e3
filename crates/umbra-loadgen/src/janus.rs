//! The Janus backend: the Janus API over its HTTP transport (one Janus session, a plugin handle
//! per participant, events by long poll), VideoRoom requests: `create` a room, `join` as
//! publisher and `publish` with our offer; each subscriber `join`s as subscriber to the feed,
//! answers Janus's offer and sends `start`. Keepalives every 10 s; "No such feed" (428)
//! retried a bounded number of times.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http;
use crate::peer::Peer;

const NO_SUCH_FEED: i64 = 428;

pub struct Janus {
    base: String,
    session: u64,
    publisher_handle: u64,
    room: u64,
    feed: Option<Value>,
    txn: u64,
    pending: VecDeque<Value>,
    keepalive: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
}

fn post(url: &str, body: &Value) -> Result<Value, String> {
    let (status, text) = http::request(
        "POST",
        url,
        &[],
        Some(("application/json", body.to_string().as_bytes())),
        Duration::from_secs(15),
    )?;
    if status != 200 {
        return Err(format!("POST {url}: HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("POST {url}: {e}: {text}"))
}

impl Janus {
    /// `base`: the HTTP transport's URL, e.g. `http://127.0.0.1:8088/janus`.
    pub fn new(base: &str) -> Result<Self, String> {
        let base = base.trim_end_matches('/').to_string();
        let mut j = Self {
            base,
            session: 0,
            publisher_handle: 0,
            room: 0,
            feed: None,
            txn: 0,
            pending: VecDeque::new(),
            keepalive: None,
        };
        let r = j.call(&j.base.clone(), json!({"janus": "create"}))?;
        j.session = r["data"]["id"].as_u64().ok_or_else(|| format!("create: no session id in {r}"))?;
        Ok(j)
    }

    fn call(&mut self, url: &str, mut body: Value) -> Result<Value, String> {
        self.txn += 1;
        body["transaction"] = json!(format!("lg{}", self.txn));
        let r = post(url, &body)?;
        if r["janus"] == "error" {
            return Err(format!("{}: {}", body["janus"], r["error"]));
        }
        Ok(r)
    }

    fn session_url(&self) -> String {
        format!("{}/{}", self.base, self.session)
    }

    fn attach(&mut self) -> Result<u64, String> {
        let r = self.call(&self.session_url(), json!({"janus": "attach", "plugin": "janus.plugin.videoroom"}))?;
        r["data"]["id"].as_u64().ok_or_else(|| format!("attach: no handle id in {r}"))
    }

    /// A plugin message; returns the synchronous reply (`success` with plugin data, or `ack`).
    fn message(&mut self, handle: u64, body: Value, jsep: Option<Value>) -> Result<Value, String> {
        let mut m = json!({"janus": "message", "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        let url = format!("{}/{handle}", self.session_url());
        self.call(&url, m)
    }

    /// The next plugin event for `handle` (long poll), within `timeout`. Events for other
    /// handles (webrtcup, media, slowlink of earlier subscribers) are dropped.
    fn event(&mut self, handle: u64, timeout: Duration) -> Result<Value, String> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(e) = self.pending.pop_front() {
                if e["sender"].as_u64() == Some(handle) && e["janus"] == "event" {
                    return Ok(e);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!("no event for handle {handle} within {timeout:?}"));
            }
            let url = format!("{}?maxev=10&rid={}", self.session_url(), self.txn);
            self.txn += 1;
            let (status, text) = http::request("GET", &url, &[], None, Duration::from_secs(40))?;
            if status != 200 {
                return Err(format!("long poll: HTTP {status}: {text}"));
            }
            let v: Value = serde_json::from_str(&text).map_err(|e| format!("long poll: {e}: {text}"))?;
            match v {
                Value::Array(a) => self.pending.extend(a),
                other => self.pending.push_back(other),
            }
        }
    }

    /// Creates a room, joins it as publisher and publishes our offer; returns the publisher's peer.
    pub fn publish(&mut self, bind: IpAddr) -> Result<Peer, String> {
        let handle = self.attach()?;
        self.publisher_handle = handle;
        // A random-ish room id so that runs against one Janus never collide.
        let room = 1_000_000 + (u64::from(std::process::id()) * 7919 + crate::frames::now_us()) % 1_000_000_000;
        let r = self.message(
            handle,
            json!({"request": "create", "room": room, "permanent": false, "publishers": 1,
                   "bitrate": 0, "fir_freq": 0, "audiocodec": "opus", "videocodec": "vp8",
                   "notify_joining": false, "description": "umbra-loadgen"}),
            None,
        )?;
        let data = &r["plugindata"]["data"];
        if data["videoroom"] != "created" {
            return Err(format!("create room: {r}"));
        }
        self.room = room;
        self.message(
            handle,
            json!({"request": "join", "ptype": "publisher", "room": room, "display": "loadgen"}),
            None,
        )?;
        let e = self.event(handle, Duration::from_secs(10))?;
        let data = &e["plugindata"]["data"];
        if data["videoroom"] != "joined" {
            return Err(format!("join as publisher: {e}"));
        }
        self.feed = Some(data["id"].clone());
        let mut peer = Peer::new(bind)?;
        let offer = peer.create_offer(true)?;
        self.message(
            handle,
            json!({"request": "publish", "audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": offer, "trickle": false})),
        )?;
        let e = self.event(handle, Duration::from_secs(10))?;
        crate::debug!("janus publisher offer:\n{offer}");
        let answer = e["jsep"]["sdp"].as_str().ok_or_else(|| format!("publish: no answer in {e}"))?.to_string();
        crate::debug!("janus publisher answer:\n{answer}");
        peer.accept_answer(&answer)?;
        Ok(peer)
    }

    /// A subscriber handle on the publisher's feed; returns its peer (our answer sent).
    pub fn subscribe(&mut self, bind: IpAddr) -> Result<Peer, String> {
        let feed = self.feed.clone().ok_or("no publisher yet")?;
        let handle = self.attach()?;
        let mut offer = None;
        for attempt in 0..50 {
            self.message(
                handle,
                json!({"request": "join", "ptype": "subscriber", "room": self.room, "streams": [{"feed": feed}]}),
                None,
            )?;
            let e = self.event(handle, Duration::from_secs(10))?;
            let data = &e["plugindata"]["data"];
            if data["error_code"].as_i64() == Some(NO_SUCH_FEED) && attempt < 49 {
                // The publisher's feed is not there yet, just after its publish.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            if data["videoroom"] != "attached" {
                return Err(format!("join as subscriber: {e}"));
            }
            offer = e["jsep"]["sdp"].as_str().map(str::to_string);
            break;
        }
        let offer = offer.ok_or("subscriber: no offer from Janus")?;
        let mut peer = Peer::new(bind)?;
        let answer = peer.accept_offer(&offer)?;
        self.message(
            handle,
            json!({"request": "start", "room": self.room}),
            Some(json!({"type": "answer", "sdp": answer, "trickle": false})),
        )?;
        let e = self.event(handle, Duration::from_secs(10))?;
        let data = &e["plugindata"]["data"];
        if data["started"] != "ok" && data["videoroom"] != "event" {
            return Err(format!("start: {e}"));
        }
        if data["error"].is_string() {
            return Err(format!("start: {e}"));
        }
        Ok(peer)
    }

    /// Keeps the Janus session alive (its timeout is 60 s) from a thread.
    pub fn start_keepalive(&mut self) {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let url = self.session_url();
        let handle = std::thread::spawn(move || {
            let mut n = 0u64;
            let mut last = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if last.elapsed() > Duration::from_secs(10) {
                    last = Instant::now();
                    n += 1;
                    let _ = post(&url, &json!({"janus": "keepalive", "transaction": format!("ka{n}")}));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        self.keepalive = Some((stop, handle));
    }

    /// Destroys the room (everyone leaves) and the session (every handle detached).
    pub fn teardown(&mut self) {
        if let Some((stop, handle)) = self.keepalive.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = handle.join();
        }
        if self.room != 0 {
            let _ = self.message(self.publisher_handle, json!({"request": "destroy", "room": self.room}), None);
        }
        let _ = self.call(&self.session_url(), json!({"janus": "destroy"}));
    }
}
