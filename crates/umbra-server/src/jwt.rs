//! Compact JWS with HS256 — the only algorithm OpenTok's secret-based SDKs use. Parsing and
//! verification are separate so callers can find the signing secret from an (unverified) claim.

use aws_lc_rs::hmac;
use serde_json::{Map, Value};

use crate::b64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT: expected three dot-separated base64url segments")]
    NotThreeSegments,
    #[error("JWT {0} segment is not valid base64url")]
    BadBase64(&'static str),
    #[error("JWT {0} segment is not a JSON object")]
    BadJson(&'static str),
    #[error("JWT header has no \"alg\"")]
    MissingAlg,
    #[error("JWT algorithm {0:?} is not accepted; tokens must be signed with HS256")]
    UnsupportedAlg(String),
}

/// A time claim that is neither a number nor a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotATime;

/// A parsed but not yet verified JWT.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

pub fn parse(token: &str) -> Result<Parsed, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::NotThreeSegments);
    };
    let header = decode_object(h, "header")?;
    let claims = decode_object(c, "payload")?;
    let signature = b64::url_decode(s).ok_or(JwtError::BadBase64("signature"))?;
    match header.get("alg") {
        None => return Err(JwtError::MissingAlg),
        Some(Value::String(alg)) if alg == "HS256" => {}
        Some(Value::String(alg)) => return Err(JwtError::UnsupportedAlg(alg.clone())),
        Some(other) => return Err(JwtError::UnsupportedAlg(other.to_string())),
    }
    Ok(Parsed { claims, signing_input: format!("{h}.{c}"), signature })
}

fn decode_object(segment: &str, what: &'static str) -> Result<Map<String, Value>, JwtError> {
    let bytes = b64::url_decode(segment).ok_or(JwtError::BadBase64(what))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(JwtError::BadJson(what)),
    }
}

impl Parsed {
    /// Constant-time check of the HS256 signature against `secret`.
    pub fn verify(&self, secret: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
        hmac::verify(&key, self.signing_input.as_bytes(), &self.signature).is_ok()
    }

    pub fn str_claim(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A NumericDate claim. Floats are accepted (some libraries emit them) and truncated.
    pub fn time_claim(&self, name: &str) -> Result<Option<i64>, NotATime> {
        match self.claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).map(Some).ok_or(NotATime),
            // Some SDKs write numbers as strings in T1-derived claims; accept digits only.
            Some(Value::String(s)) => s.parse::<i64>().map(Some).map_err(|_| NotATime),
            Some(_) => Err(NotATime),
        }
    }
}

/// Signs `claims` with HS256. Used by the CLI's token command, the tests and the benchmark.
pub fn sign_hs256(claims: &Value, secret: &[u8]) -> String {
    let header = b64::url_encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64::url_encode(claims.to_string());
    let input = format!("{header}.{payload}");
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let sig = hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64::url_encode(sig.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_tamper() {
        let t = sign_hs256(&json!({"iss": "1", "exp": 5}), b"secret");
        let p = parse(&t).unwrap();
        assert!(p.verify(b"secret"));
        assert!(!p.verify(b"other"));
        assert_eq!(p.str_claim("iss"), Some("1"));
        assert_eq!(p.time_claim("exp"), Ok(Some(5)));
        let mut parts: Vec<_> = t.split('.').map(str::to_owned).collect();
        parts[1] = b64::url_encode(r#"{"iss":"2","exp":5}"#);
        assert!(!parse(&parts.join(".")).unwrap().verify(b"secret"));
    }

    #[test]
    fn rejects_other_algorithms_and_shapes() {
        let none = format!("{}.{}.", b64::url_encode(r#"{"alg":"none"}"#), b64::url_encode("{}"));
        assert_eq!(parse(&none).unwrap_err(), JwtError::UnsupportedAlg("none".into()));
        assert_eq!(parse("a.b").unwrap_err(), JwtError::NotThreeSegments);
        assert_eq!(parse("a.b.c.d").unwrap_err(), JwtError::NotThreeSegments);
        assert_eq!(parse("!.b.c").unwrap_err(), JwtError::BadBase64("header"));
        let arr = format!("{}.{}.", b64::url_encode("[]"), b64::url_encode("{}"));
        assert_eq!(parse(&arr).unwrap_err(), JwtError::BadJson("header"));
    }
}
