//! The client end of `docs/signaling.md`: a WebSocket that never blocks the session thread.
//!
//! What travels is `umbra-protocol`'s: requests are [`ClientMessage`] values (serialized here,
//! once), and what arrives is handed up as text for the session thread to parse as a
//! `ServerFrame`, so that a message this SDK cannot parse is reported there rather than lost here.

use std::io::ErrorKind;
use std::net::TcpStream;

use tungstenite::{Message, WebSocket};
use umbra_protocol::{ClientMessage, PROTOCOL_VERSION, RequestId, close};

use crate::error::ClientError;

pub(crate) struct Signaling {
    ws: WebSocket<TcpStream>,
    next_id: u64,
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
        _ => "unknown close code",
    }
}

impl Signaling {
    /// Opens the socket and sends `connect`; the `welcome` (or error) arrives through `poll`.
    pub(crate) fn connect(server_url: &str, session_id: &str, token: &str) -> Result<Self, ClientError> {
        let (host, url) = ws_url(server_url)?;
        let stream =
            TcpStream::connect(&host).map_err(|e| ClientError::Signaling(format!("cannot reach {host}: {e}")))?;
        stream.set_nodelay(true).ok();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| ClientError::Signaling(format!("WebSocket handshake with {url}: {e}")))?;
        ws.get_ref().set_nonblocking(true).map_err(|e| ClientError::Signaling(e.to_string()))?;
        let mut s = Self { ws, next_id: 1, write_blocked: false };
        s.send(&ClientMessage::Connect {
            v: PROTOCOL_VERSION,
            token: token.to_string(),
            session_id: Some(session_id.to_string()),
        })?;
        Ok(s)
    }

    pub(crate) fn send(&mut self, msg: &ClientMessage) -> Result<(), ClientError> {
        // The protocol's types serialize infallibly (plain structs, string keys); an error here
        // would be a bug in them, reported like a broken socket rather than a panic.
        let text = serde_json::to_string(msg)
            .map_err(|e| ClientError::Signaling(format!("cannot serialize {}: {e}", msg.kind())))?;
        match self.ws.send(Message::text(text)) {
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

    /// The next text message, if one is waiting. `Err` when the socket is gone.
    pub(crate) fn poll(&mut self) -> Result<Option<String>, ClientError> {
        match self.ws.flush() {
            Ok(()) => self.write_blocked = false,
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => self.write_blocked = true,
            Err(e) => return Err(ClientError::Signaling(e.to_string())),
        }
        loop {
            return match self.ws.read() {
                Ok(Message::Text(t)) => Ok(Some(t.as_str().to_string())),
                // The protocol sends text frames only; a binary one is reported upstream as
                // a message that does not parse.
                Ok(Message::Binary(b)) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
                Ok(Message::Close(frame)) => Err(ClientError::Signaling(match frame {
                    Some(f) => {
                        let code = u16::from(f.code);
                        format!("closed by server: {code} ({}) {}", close_meaning(code), f.reason)
                    }
                    None => "closed by server".into(),
                })),
                // Ping/pong frames of the WebSocket layer itself: tungstenite answers them.
                Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(ClientError::Signaling(e.to_string())),
            };
        }
    }

    /// The TCP socket, for the session thread's poll(2).
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(self.ws.get_ref())
    }

    /// Whether bytes wait for the socket to accept them (see `write_blocked`).
    pub(crate) fn wants_write(&self) -> bool {
        self.write_blocked
    }

    pub(crate) fn close(&mut self) {
        let _ = self.send(&ClientMessage::Leave);
        let _ = self.ws.flush();
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
