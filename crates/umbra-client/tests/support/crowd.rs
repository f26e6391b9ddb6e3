//! Cheap participants: plain WebSocket clients that speak signaling v1 with `umbra-protocol`'s
//! types (no SDK, no media), to fill a relayed session with hundreds of connections and streams.
//!
//! One background thread keeps every member's socket drained and sends its heartbeat, so the
//! server neither finds a member too slow (its outbox is bounded) nor silent (heartbeat
//! timeout) however long a test runs. Member 0 is the observer: every message it receives is
//! kept, to check what the session saw. Every message any member receives must parse as a
//! `ServerFrame`; those that do not are counted.

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};
use umbra_protocol::{
    AckBody, ClientMessage, PROTOCOL_VERSION, PropertyChange, PublishStream, RequestId, ServerFrame, ServerMessage,
};

/// Longest any one step waits for the server.
const STEP: Duration = Duration::from_secs(15);
/// Heartbeat of every member; well inside the server's default timeout (30 s).
const PING_EVERY: Duration = Duration::from_secs(5);

struct Member {
    ws: WebSocket<TcpStream>,
    connection_id: String,
    stream_id: Option<String>,
    next_id: u64,
    last_ping: Instant,
}

#[derive(Default)]
struct Shared {
    members: Vec<Member>,
    /// Everything member 0 received, in order.
    observed: Vec<ServerMessage>,
    /// Texts some member received that do not parse as a `ServerFrame`.
    unparsed: Vec<String>,
}

pub struct Crowd {
    addr: String,
    /// Mints a token for each new member: the server caps live connections per token.
    mint: Box<dyn Fn(usize) -> String>,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    drainer: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Handles one received text: parsed, kept if member 0 got it.
fn receive(shared: &mut Shared, member: usize, text: &str) -> Option<ServerMessage> {
    match serde_json::from_str::<ServerFrame>(text) {
        Ok(f) => {
            if member == 0 {
                shared.observed.push(f.message.clone());
            }
            Some(f.message)
        }
        Err(e) => {
            shared.unparsed.push(format!("{e}: {text}"));
            None
        }
    }
}

/// The next text on a non-blocking socket, `Ok(None)` if none is waiting.
fn read_text(ws: &mut WebSocket<TcpStream>) -> Result<Option<String>, String> {
    loop {
        return match ws.read() {
            Ok(Message::Text(t)) => Ok(Some(t.as_str().to_string())),
            Ok(Message::Close(f)) => Err(format!("closed by the server: {f:?}")),
            Ok(_) => continue,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e.to_string()),
        };
    }
}

fn send(ws: &mut WebSocket<TcpStream>, msg: &ClientMessage) -> Result<(), String> {
    let text = serde_json::to_string(msg).map_err(|e| e.to_string())?;
    match ws.send(Message::text(text)) {
        Ok(()) => Ok(()),
        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => flush(ws),
        Err(e) => Err(e.to_string()),
    }
}

/// Writes out what tungstenite buffered (bounded: a loopback server reads fast).
fn flush(ws: &mut WebSocket<TcpStream>) -> Result<(), String> {
    let end = Instant::now() + STEP;
    loop {
        match ws.flush() {
            Ok(()) => return Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e.to_string()),
        }
    }
}

impl Crowd {
    /// `connections` members, the first `streams` of them publishing one stream each.
    /// `mint(i)` gives member `i` its token.
    pub fn start(
        addr: &str,
        mint: impl Fn(usize) -> String + 'static,
        connections: usize,
        streams: usize,
    ) -> Result<Crowd, String> {
        assert!(streams <= connections, "one stream per member at most");
        let mut crowd = Crowd {
            addr: addr.to_string(),
            mint: Box::new(mint),
            shared: Arc::default(),
            stop: Arc::default(),
            drainer: None,
        };
        let (shared, stop) = (crowd.shared.clone(), crowd.stop.clone());
        crowd.drainer = Some(std::thread::spawn(move || drain(&shared, &stop)));
        for _ in 0..connections {
            crowd.add_connection()?;
        }
        for i in 0..streams {
            crowd.publish(i)?;
        }
        Ok(crowd)
    }

    /// One more member; its connection id.
    pub fn add_connection(&self) -> Result<String, String> {
        let stream = TcpStream::connect(&self.addr).map_err(|e| format!("connect {}: {e}", self.addr))?;
        stream.set_nodelay(true).ok();
        let (mut ws, _) = tungstenite::client(format!("ws://{}/v1/signaling", self.addr), stream)
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        ws.get_ref().set_nonblocking(true).map_err(|e| e.to_string())?;
        let member = lock(&self.shared).members.len();
        send(&mut ws, &ClientMessage::Connect { v: PROTOCOL_VERSION, token: (self.mint)(member), session_id: None })?;
        let end = Instant::now() + STEP;
        // The welcome comes first; snapshot pages and events that follow are the drainer's.
        let connection_id = loop {
            if Instant::now() > end {
                return Err("no welcome".into());
            }
            let Some(text) = read_text(&mut ws)? else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            match serde_json::from_str::<ServerFrame>(&text).map(|f| f.message) {
                Ok(ServerMessage::Welcome { connection_id, .. }) => break connection_id,
                Ok(other) => return Err(format!("expected welcome, got {other:?}")),
                Err(e) => return Err(format!("{e}: {text}")),
            }
        };
        lock(&self.shared).members.push(Member {
            ws,
            connection_id: connection_id.clone(),
            stream_id: None,
            next_id: 1,
            last_ping: Instant::now(),
        });
        Ok(connection_id)
    }

    /// Sends a request from member `i` and waits for its ack (its other messages are handled
    /// as the drainer would).
    fn request(&self, i: usize, msg: ClientMessage) -> Result<AckBody, String> {
        let mut guard = lock(&self.shared);
        let shared = &mut *guard;
        let m = shared.members.get_mut(i).ok_or_else(|| format!("no member {i}"))?;
        let id = m.next_id;
        m.next_id += 1;
        let kind = msg.kind();
        send(&mut m.ws, &msg.with_id(RequestId::Number(id)))?;
        let end = Instant::now() + STEP;
        loop {
            if Instant::now() > end {
                return Err(format!("no answer to {kind} of member {i}"));
            }
            let text = read_text(&mut shared.members[i].ws)?;
            let Some(text) = text else {
                std::thread::sleep(Duration::from_millis(1));
                continue;
            };
            match receive(shared, i, &text) {
                Some(ServerMessage::Ack { id: Some(RequestId::Number(n)), body }) if n == id => return Ok(body),
                Some(ServerMessage::Error { id: Some(RequestId::Number(n)), code, message }) if n == id => {
                    return Err(format!("{kind} refused: {code}: {message}"));
                }
                _ => {}
            }
        }
    }

    /// Member `i` publishes a stream (no SDP: the session is relayed); its stream id.
    pub fn publish(&self, i: usize) -> Result<String, String> {
        let stream = PublishStream {
            name: Some(format!("crowd-{i}")),
            has_audio: true,
            has_video: true,
            video_type: None,
            video_dimensions: None,
            e2ee: None,
        };
        match self.request(i, ClientMessage::Publish { id: None, stream, sdp_offer: None })? {
            AckBody::Published { stream_id, .. } => {
                lock(&self.shared).members[i].stream_id = Some(stream_id.clone());
                Ok(stream_id)
            }
            other => Err(format!("publish ack without a stream: {other:?}")),
        }
    }

    /// Member `i` unpublishes its stream; the stream id.
    pub fn unpublish(&self, i: usize) -> Result<String, String> {
        let stream_id = lock(&self.shared).members[i].stream_id.take().ok_or("that member publishes nothing")?;
        self.request(i, ClientMessage::Unpublish { id: None, stream_id: stream_id.clone() })?;
        Ok(stream_id)
    }

    /// Member `i` changes a property of its stream.
    pub fn set_property(&self, i: usize, change: PropertyChange) -> Result<String, String> {
        let stream_id = lock(&self.shared).members[i].stream_id.clone().ok_or("that member publishes nothing")?;
        self.request(i, ClientMessage::SetStreamProperty { id: None, stream_id: stream_id.clone(), change })?;
        Ok(stream_id)
    }

    pub fn connection_ids(&self) -> Vec<String> {
        lock(&self.shared).members.iter().map(|m| m.connection_id.clone()).collect()
    }

    pub fn stream_ids(&self) -> Vec<String> {
        lock(&self.shared).members.iter().filter_map(|m| m.stream_id.clone()).collect()
    }

    /// Waits until the observer (member 0) has received a message `pred` accepts.
    pub fn observer_sees(&self, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> Result<(), String> {
        let end = Instant::now() + STEP;
        while Instant::now() < end {
            if lock(&self.shared).observed.iter().any(&pred) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(format!("the crowd's observer never saw {what}"))
    }

    /// Server messages that did not parse as `umbra-protocol`'s `ServerFrame`.
    pub fn unparsed(&self) -> Vec<String> {
        lock(&self.shared).unparsed.clone()
    }

    pub fn address(&self) -> &str {
        &self.addr
    }
}

impl Drop for Crowd {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.drainer.take() {
            let _ = t.join();
        }
        for m in &mut lock(&self.shared).members {
            let _ = send(&mut m.ws, &ClientMessage::Leave);
            let _ = m.ws.close(None);
            let _ = m.ws.flush();
        }
    }
}

/// The background thread: every member's socket read dry and its heartbeat sent, every 20 ms.
fn drain(shared: &Mutex<Shared>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        {
            let mut guard = lock(shared);
            let shared = &mut *guard;
            for i in 0..shared.members.len() {
                // A socket the server closed stays closed; the test notices what is missing.
                while let Ok(Some(text)) = read_text(&mut shared.members[i].ws) {
                    receive(shared, i, &text);
                }
                let m = &mut shared.members[i];
                if m.last_ping.elapsed() >= PING_EVERY {
                    m.last_ping = Instant::now();
                    let _ = send(&mut m.ws, &ClientMessage::Ping { id: None });
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
