//! The client end of `docs/signaling.md`: a WebSocket that never blocks the session thread.
//!
//! What travels is `umbra-protocol`'s: requests are [`ClientMessage`] values (serialized here,
//! once), and what arrives is handed up as text for the session thread to parse as a
//! `ServerFrame`, so that a message this SDK cannot parse is reported there rather than lost here.
//!
//! The socket can be gone while the session lives on (it is being resumed, see
//! `worker::resume`): then requests fail with [`ClientError::ConnectionInterrupted`], `poll` has
//! nothing, and the descriptor is -1, which poll(2) skips.

use std::io::ErrorKind;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use tungstenite::{Message, WebSocket};
use umbra_protocol::{ClientMessage, PROTOCOL_VERSION, RequestId, close};

use crate::error::ClientError;

/// Opening a socket blocks the session thread (media included), so it is bounded: a server
/// that does not accept or answer the WebSocket upgrade within these is tried again later.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(3);

/// How a socket ended.
#[derive(Debug)]
pub(crate) struct SocketEnd {
    /// The server did not end the connection itself (no close frame, a transport error, or a
    /// close code that asks for a resume: 1001, 4004, anything unknown): resume it.
    pub(crate) resumable: bool,
    pub(crate) message: String,
}

pub(crate) struct Signaling {
    server_url: String,
    ws: Option<WebSocket<TcpStream>>,
    next_id: u64,
    /// A `resume` went out on this socket and its answer has not come: nothing else may be
    /// sent before the server has taken the socket as the connection's.
    resuming: bool,
    /// A write hit `WouldBlock`: bytes wait in tungstenite's buffer, and the session thread
    /// must wake when the socket can take them.
    write_blocked: bool,
}

fn ws_url(server_url: &str) -> Result<(String, String), ClientError> {
    let rest = server_url.strip_prefix("http://").or_else(|| server_url.strip_prefix("ws://")).ok_or_else(|| {
        ClientError::InvalidArgument(format!("server URL {server_url:?} must start with http:// or ws://"))
    })?;
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    Ok((host.clone(), format!("ws://{host}/v1/signaling")))
}

/// What a close code of the protocol means (signaling.md § Close codes).
fn close_meaning(code: u16) -> &'static str {
    match code {
        1000 => "normal closure",
        close::SERVER_SHUTDOWN => "the server is shutting down",
        close::FORCED => "forced disconnect",
        close::REPLACED => "resumed on another socket",
        close::HANDSHAKE_REFUSED => "handshake refused",
        close::SESSION_MOVED => "the session moved to another cluster node",
        _ => "unknown close code",
    }
}

/// Whether a close code ends the connection for good (signaling.md § Close codes): the client
/// left, was removed, was resumed elsewhere, or was refused. Every other code (1001 shutdown,
/// 4004 moved, 1011, codes of a newer server) leaves it resumable.
fn close_is_final(code: u16) -> bool {
    matches!(code, 1000 | close::FORCED | close::REPLACED | close::HANDSHAKE_REFUSED)
}

/// A new socket with the WebSocket handshake done, nonblocking from then on.
fn open(server_url: &str) -> Result<WebSocket<TcpStream>, ClientError> {
    let (host, url) = ws_url(server_url)?;
    let unreachable = |e: std::io::Error| ClientError::Signaling(format!("cannot reach {host}: {e}"));
    let addrs: Vec<_> = host.to_socket_addrs().map_err(unreachable)?.collect();
    let mut last = None;
    let mut stream = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let stream = stream
        .ok_or_else(|| unreachable(last.unwrap_or_else(|| std::io::Error::new(ErrorKind::NotFound, "no address"))))?;
    stream.set_nodelay(true).ok();
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).ok();
    stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT)).ok();
    let (ws, _) = tungstenite::client(url.as_str(), stream)
        .map_err(|e| ClientError::Signaling(format!("WebSocket handshake with {url}: {e}")))?;
    ws.get_ref().set_nonblocking(true).map_err(|e| ClientError::Signaling(e.to_string()))?;
    Ok(ws)
}

impl Signaling {
    /// Opens the socket and sends `connect`; the `welcome` (or error) arrives through `poll`.
    pub(crate) fn connect(server_url: &str, session_id: &str, token: &str) -> Result<Self, ClientError> {
        let ws = open(server_url)?;
        let mut s = Self {
            server_url: server_url.to_string(),
            ws: Some(ws),
            next_id: 1,
            resuming: false,
            write_blocked: false,
        };
        s.send(&ClientMessage::Connect {
            v: PROTOCOL_VERSION,
            token: token.to_string(),
            session_id: Some(session_id.to_string()),
        })?;
        Ok(s)
    }

    /// Opens a new socket to the same server and sends `first` (a `resume`); the `resumed` (or
    /// error) arrives through `poll`. Request ids go on from where they were.
    pub(crate) fn reopen(&mut self, first: &ClientMessage) -> Result<(), ClientError> {
        self.drop_socket();
        self.ws = Some(open(&self.server_url)?);
        self.send(first).inspect_err(|_| self.drop_socket())?;
        self.resuming = true;
        Ok(())
    }

    /// The server answered `resumed`: requests may go out again.
    pub(crate) fn resumed(&mut self) {
        self.resuming = false;
    }

    /// Forgets the socket without a close handshake (it is already gone, or being replaced).
    pub(crate) fn drop_socket(&mut self) {
        self.ws = None;
        self.write_blocked = false;
        self.resuming = false;
    }

    pub(crate) fn is_open(&self) -> bool {
        self.ws.is_some()
    }

    pub(crate) fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        let Some(ws) = self.ws.as_mut().filter(|_| !self.resuming) else {
            return Err(ClientError::ConnectionInterrupted);
        };
        // The protocol's types serialize infallibly (plain structs, string keys); an error here
        // would be a bug in them, reported like a broken socket rather than a panic.
        let text = serde_json::to_string(msg)
            .map_err(|e| ClientError::Signaling(format!("cannot serialize {}: {e}", msg.kind())))?;
        match ws.send(Message::text(text)) {
            Ok(()) => Ok(()),
            // Queued in tungstenite's buffer; `poll` flushes it.
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {
                self.write_blocked = true;
                Ok(())
            }
            Err(e) => Err(ClientError::Signaling(e.to_string())),
        }
    }

    /// Sends a request under a new id and returns the id, which its `ack` or `error` repeats.
    pub(crate) fn request(&mut self, msg: ClientMessage) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let msg = msg.with_id(RequestId::Number(id));
        debug_assert!(msg.id().is_some(), "{} is not a request", msg.kind());
        self.send(&msg)?;
        Ok(id)
    }

    /// The next text message, if one is waiting. `Err` when the socket ended (it is then
    /// dropped); `Ok(None)` also while there is no socket.
    pub(crate) fn poll(&mut self) -> Result<Option<String>, SocketEnd> {
        let r = self.poll_socket();
        if r.is_err() {
            self.drop_socket();
        }
        r
    }

    fn poll_socket(&mut self) -> Result<Option<String>, SocketEnd> {
        let lost = |e: tungstenite::Error| SocketEnd { resumable: true, message: format!("connection lost: {e}") };
        let Some(ws) = self.ws.as_mut() else {
            return Ok(None);
        };
        match ws.flush() {
            Ok(()) => self.write_blocked = false,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => self.write_blocked = true,
            Err(e) => return Err(lost(e)),
        }
        loop {
            return match ws.read() {
                Ok(Message::Text(t)) => Ok(Some(t.as_str().to_string())),
                // The protocol sends text frames only; a binary one is reported upstream as
                // a message that does not parse.
                Ok(Message::Binary(b)) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
                Ok(Message::Close(frame)) => Err(match frame {
                    Some(f) => {
                        let code = u16::from(f.code);
                        SocketEnd {
                            resumable: !close_is_final(code),
                            message: format!("closed by server: {code} ({}) {}", close_meaning(code), f.reason),
                        }
                    }
                    // A close frame without a code (1005): the server did not say the
                    // connection is over.
                    None => SocketEnd { resumable: true, message: "closed by server without a code".into() },
                }),
                // Ping/pong frames of the WebSocket layer itself: tungstenite answers them.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(lost(e)),
            };
        }
    }

    /// The TCP socket, for the session thread's poll(2).
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        self.ws.as_ref().map_or(-1, |ws| std::os::fd::AsRawFd::as_raw_fd(ws.get_ref()))
    }

    /// Whether bytes wait for the socket to accept them (see `write_blocked`).
    pub(crate) fn wants_write(&self) -> bool {
        self.write_blocked
    }

    pub(crate) fn close(&mut self) {
        let _ = self.send(&ClientMessage::Leave);
        if let Some(ws) = self.ws.as_mut() {
            let _ = ws.flush();
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        self.ws = None;
    }
}
