//! What an app server does with its project's key and secret, done here so that trying Umbra
//! out needs no app server: create a session over the REST API and sign client tokens. The
//! formats are the OpenTok SDKs' (an `X-OPENTOK-AUTH` JWT, HS256 client tokens).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use crate::error::MediaCliError;

/// Client tokens this tool makes live a day: long enough for any demo, and the tool never
/// stores them.
const TOKEN_TTL_SECS: u64 = 86_400;
/// The server refuses `X-OPENTOK-AUTH` headers that live longer than 300 s.
const AUTH_TTL_SECS: u64 = 180;

pub struct Project<'a> {
    pub api_key: &'a str,
    pub api_secret: &'a str,
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn sign_hs256(claims: &Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let sig = URL_SAFE_NO_PAD.encode(hmac::sign(&key, input.as_bytes()).as_ref());
    format!("{input}.{sig}")
}

fn nonce() -> String {
    let mut bytes = [0u8; 8];
    // A nonce only has to differ between tokens; the clock is a fine fallback.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0).to_le_bytes();
    }
    u64::from_le_bytes(bytes).to_string()
}

impl Project<'_> {
    /// A client token for `session_id` with `role` (`publisher`, `subscriber`, ...).
    pub fn client_token(&self, session_id: &str, role: &str) -> String {
        let now = now_secs();
        let claims = json!({
            "iss": self.api_key, "ist": "project", "iat": now, "exp": now + TOKEN_TTL_SECS,
            "scope": "session.connect", "session_id": session_id, "role": role,
            "nonce": nonce(), "create_time": now,
        });
        sign_hs256(&claims, self.api_secret)
    }

    /// `POST /session/create` for a routed session, as a server SDK sends it; returns its id.
    pub fn create_session(&self, url: &str, e2ee: bool) -> Result<String, MediaCliError> {
        let fail = |message: String| MediaCliError::SessionCreate { url: url.to_owned(), message };
        let host = url
            .strip_prefix("http://")
            .ok_or_else(|| MediaCliError::Usage(format!("--url {url} must start with http://")))?
            .trim_end_matches('/');
        let now = now_secs();
        let auth = sign_hs256(
            &json!({"iss": self.api_key, "ist": "project", "iat": now, "exp": now + AUTH_TTL_SECS}),
            self.api_secret,
        );
        let body = format!("p2p.preference=disabled&e2ee={e2ee}");
        let mut stream = TcpStream::connect(host).map_err(|e| fail(e.to_string()))?;
        stream.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| fail(e.to_string()))?;
        write!(
            stream,
            "POST /session/create HTTP/1.1\r\nHost: {host}\r\nX-OPENTOK-AUTH: {auth}\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nAccept: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .map_err(|e| fail(e.to_string()))?;
        let mut resp = String::new();
        stream.read_to_string(&mut resp).map_err(|e| fail(e.to_string()))?;
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
        if !head.starts_with("HTTP/1.1 200") {
            // The server's JSON error says what is wrong (a wrong secret, no E2EE add-on, ...).
            let status = head.lines().next().unwrap_or_default();
            return Err(fail(format!("{status} {}", body.trim())));
        }
        let v: Value = serde_json::from_str(body.trim()).map_err(|e| fail(format!("the answer is not JSON: {e}")))?;
        v[0]["session_id"].as_str().map(str::to_owned).ok_or_else(|| fail(format!("no session_id in {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_hs256_jwts_with_the_sdk_claims() {
        let p = Project { api_key: "12345678", api_secret: "0123456789abcdef0123456789abcdef01234567" };
        let t = p.client_token("1_session", "subscriber");
        let parts: Vec<&str> = t.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(
            (&claims["iss"], &claims["scope"], &claims["session_id"], &claims["role"]),
            (&json!("12345678"), &json!("session.connect"), &json!("1_session"), &json!("subscriber"))
        );
        let key = hmac::Key::new(hmac::HMAC_SHA256, p.api_secret.as_bytes());
        let sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        assert!(hmac::verify(&key, format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig).is_ok());
    }
}
