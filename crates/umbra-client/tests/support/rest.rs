//! What an app server does for these tests: project JWTs and client tokens (HS256, as the
//! OpenTok server SDKs make them), sessions made with `POST /session/create`, and the REST
//! force-mute. Plain HTTP/1.1 over loopback; no HTTP library needed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

/// A project's credentials and the server it lives on (`host:port`).
#[derive(Debug, Clone)]
pub struct AppServer {
    pub addr: String,
    pub api_key: String,
    pub api_secret: String,
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

fn sign_hs256(claims: &Value, secret: &str) -> String {
    let head = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = b64url(claims.to_string().as_bytes());
    let input = format!("{head}.{body}");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    let sig = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64url(sig.as_ref()))
}

impl AppServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `X-OPENTOK-AUTH` value of REST calls.
    fn project_jwt(&self) -> String {
        let now = now();
        sign_hs256(
            &json!({"iss": self.api_key, "ist": "project", "iat": now, "exp": now + 180, "jti": format!("t{now}")}),
            &self.api_secret,
        )
    }

    /// A client token for `session_id` with `role` and `connection_data`.
    pub fn token(&self, session_id: &str, role: &str, data: &str) -> String {
        let now = now();
        sign_hs256(
            &json!({
                "iss": self.api_key, "ist": "project", "iat": now, "exp": now + 3600,
                "scope": "session.connect", "session_id": session_id, "role": role,
                "nonce": now, "connection_data": data,
            }),
            &self.api_secret,
        )
    }

    /// A new session: `relayed` (clients send media to each other; a publish needs no SDP) or
    /// routed through the media router.
    pub fn create_session(&self, relayed: bool) -> Result<String, String> {
        let form = if relayed { "p2p.preference=enabled" } else { "p2p.preference=disabled" };
        self.create_session_form(form)
    }

    /// A new routed, end-to-end encrypted session (the server's default cipher suite, 6); the
    /// project needs the e2ee add-on (`Server::e2ee_project`).
    pub fn create_e2ee_session(&self) -> Result<String, String> {
        self.create_session_form("p2p.preference=disabled&e2ee=true")
    }

    fn create_session_form(&self, form: &str) -> Result<String, String> {
        let (status, body) = self.post("/session/create", "application/x-www-form-urlencoded", form.as_bytes())?;
        if status != 200 {
            return Err(format!("session/create {form}: HTTP {status}: {body}"));
        }
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("session/create: {e}: {body}"))?;
        v[0]["session_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("session/create: no session_id in {body}"))
    }

    /// `POST /v2/project/{key}/session/{sid}/stream/{streamId}/mute`: the server tells the
    /// stream's publisher `mute_forced`.
    pub fn mute_stream(&self, session_id: &str, stream_id: &str) -> Result<(), String> {
        let path = format!("/v2/project/{}/session/{session_id}/stream/{stream_id}/mute", self.api_key);
        let (status, body) = self.post(&path, "application/json", b"{}")?;
        if status != 200 {
            return Err(format!("mute: HTTP {status}: {body}"));
        }
        Ok(())
    }

    /// `POST /v2/project/{key}/session/{sid}/signal`: a signal from the app server to everyone
    /// (it has no secret: in an E2EE session it arrives marked as not end-to-end encrypted).
    pub fn signal(&self, session_id: &str, signal_type: &str, data: &str) -> Result<(), String> {
        let path = format!("/v2/project/{}/session/{session_id}/signal", self.api_key);
        let body = json!({"type": signal_type, "data": data}).to_string();
        let (status, text) = self.post(&path, "application/json", body.as_bytes())?;
        if status != 204 && status != 200 {
            return Err(format!("signal: HTTP {status}: {text}"));
        }
        Ok(())
    }

    /// One request on its own connection (`Connection: close`); the status and the body.
    fn post(&self, path: &str, content_type: &str, body: &[u8]) -> Result<(u16, String), String> {
        let err = |e: std::io::Error| format!("POST {path}: {e}");
        let mut s = TcpStream::connect(&self.addr).map_err(err)?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(err)?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
             Accept: application/json\r\nX-OPENTOK-AUTH: {}\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            self.project_jwt(),
            body.len()
        );
        s.write_all(head.as_bytes()).map_err(err)?;
        s.write_all(body).map_err(err)?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).map_err(err)?;
        let text = String::from_utf8_lossy(&raw);
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| format!("POST {path}: no HTTP response"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("POST {path}: bad status line in {head:?}"))?;
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            return Err(format!("POST {path}: chunked bodies are not decoded here"));
        }
        Ok((status, body.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn b64url_matches_the_rfc_4648_vectors() {
        for (plain, enc) in
            [("", ""), ("f", "Zg"), ("fo", "Zm8"), ("foo", "Zm9v"), ("foob", "Zm9vYg"), ("fooba", "Zm9vYmE")]
        {
            assert_eq!(super::b64url(plain.as_bytes()), enc);
        }
        assert_eq!(super::b64url(&[0xfb, 0xff]), "-_8");
    }
}
