//! The client end of `docs/signaling.md`: a WebSocket that never blocks the session thread.

use std::io::ErrorKind;
use std::net::TcpStream;

use serde_json::{Value, json};
use tungstenite::{Message, WebSocket};

use crate::error::ClientError;

pub(crate) struct Signaling {
    ws: WebSocket<TcpStream>,
    next_id: u64,
}

fn ws_url(server_url: &str) -> Result<(String, String), ClientError> {
    let rest = server_url
        .strip_prefix("http://")
        .or_else(|| server_url.strip_prefix("ws://"))
        .ok_or_else(|| {
            ClientError::InvalidArgument(format!(
                "server URL {server_url:?} must start with http:// or ws://"
            ))
        })?;
    let host = rest.split('/').next().unwrap_or(rest).to_string();
    Ok((host.clone(), format!("ws://{host}/v1/signaling")))
}

impl Signaling {
    /// Opens the socket and sends `connect`; the `welcome` (or error) arrives through `poll`.
    pub(crate) fn connect(
        server_url: &str,
        session_id: &str,
        token: &str,
    ) -> Result<Self, ClientError> {
        let (host, url) = ws_url(server_url)?;
        let stream = TcpStream::connect(&host)
            .map_err(|e| ClientError::Signaling(format!("cannot reach {host}: {e}")))?;
        stream.set_nodelay(true).ok();
        let (ws, _) = tungstenite::client(url.as_str(), stream)
            .map_err(|e| ClientError::Signaling(format!("WebSocket handshake with {url}: {e}")))?;
        ws.get_ref()
            .set_nonblocking(true)
            .map_err(|e| ClientError::Signaling(e.to_string()))?;
        let mut s = Self { ws, next_id: 1 };
        s.send(json!({"type": "connect", "v": 1, "token": token, "session_id": session_id}))?;
        Ok(s)
    }

    pub(crate) fn send(&mut self, msg: Value) -> Result<(), ClientError> {
        match self.ws.send(Message::text(msg.to_string())) {
            Ok(()) => Ok(()),
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(()), // queued; flushed by poll
            Err(e) => Err(ClientError::Signaling(e.to_string())),
        }
    }

    /// Sends a request and returns its id.
    pub(crate) fn request(&mut self, mut msg: Value) -> Result<u64, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        msg["id"] = json!(id);
        self.send(msg)?;
        Ok(id)
    }

    /// The next message, if one is waiting. `Err` when the socket is gone.
    pub(crate) fn poll(&mut self) -> Result<Option<Value>, ClientError> {
        match self.ws.flush() {
            Ok(()) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(ClientError::Signaling(e.to_string())),
        }
        loop {
            return match self.ws.read() {
                Ok(Message::Text(t)) => serde_json::from_str(t.as_str())
                    .map(Some)
                    .map_err(|e| ClientError::Signaling(format!("server sent invalid JSON: {e}"))),
                Ok(Message::Close(frame)) => Err(ClientError::Signaling(match frame {
                    Some(f) => format!("closed by server: {} {}", u16::from(f.code), f.reason),
                    None => "closed by server".into(),
                })),
                Ok(_) => continue,
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) => Err(ClientError::Signaling(e.to_string())),
            };
        }
    }

    pub(crate) fn close(&mut self) {
        let _ = self.send(json!({"type": "leave"}));
        let _ = self.ws.flush();
        let _ = self.ws.close(None);
        let _ = self.ws.flush();
    }
}
