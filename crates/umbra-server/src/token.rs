//! Client tokens, in both formats the official server SDKs generate:
//! - JWT (HS256): `scope` = `session.connect`, `session_id`, `role`, `exp`, `iss` = API key, and
//!   optionally `connection_data`, `initial_layout_class_list`, `nonce`, `create_time`, `ist`.
//! - legacy `T1==` + base64(`partner_id=KEY&sig=HEX(HMAC-SHA1(secret, DATA)):DATA`), where DATA is
//!   a form-encoded query string. The signature covers DATA byte for byte as received, because the
//!   SDKs percent-encode differently (Python writes spaces as `+`, Node as `%20`).
//!
//! Checking is split like REST auth: [`parse`] finds the claimed project, the caller loads it
//! and the session, and [`Unverified::verify`] decides.

use aws_lc_rs::hmac;
use base64::Engine;
use serde_json::Value;
use umbra_protocol::ErrorCode;
use umbra_protocol::limits::MAX_CONNECTION_DATA;

use crate::b64;
use crate::jwt::{self, JwtError, NotATime};
use crate::model::{Project, Role, Session};

pub const T1_PREFIX: &str = "T1==";

/// The longest a client token may live: 30 days, what OpenTok's SDKs allow for `expireTime`.
pub const MAX_LIFETIME_SECS: i64 = 30 * 86_400;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("no token was given")]
    Missing,
    #[error("token is neither a JWT nor a T1 token")]
    UnknownFormat,
    #[error("T1 token is malformed: {0}")]
    MalformedT1(&'static str),
    #[error("JWT token is malformed: {0}")]
    MalformedJwt(String),
    #[error("token algorithm {0} is not accepted; tokens are signed with HS256")]
    UnsupportedAlgorithm(String),
    #[error("token names API key {0:?}, which is not a project on this server")]
    UnknownProject(String),
    #[error("token signature is invalid: it was not signed with the project's secret")]
    Forged,
    #[error("token expired at {expired_at} (server time {now})")]
    Expired { expired_at: i64, now: i64 },
    #[error("token has no expiry time")]
    MissingExpiry,
    #[error("token scope is {0:?}; only \"session.connect\" tokens connect to sessions")]
    WrongScope(String),
    #[error("token role {0:?} is not one of publisher, subscriber, moderator, publisheronly")]
    InvalidRole(String),
    #[error("token names no session")]
    MissingSessionId,
    #[error("token is for session {token_session}, not for session {requested}")]
    WrongSession { token_session: String, requested: String },
    #[error("session {0} does not exist")]
    UnknownSession(String),
    #[error("token was issued by project {token_project}, but the session belongs to another project")]
    WrongProject { token_project: String },
    #[error("token connection_data is longer than {MAX_CONNECTION_DATA} bytes")]
    ConnectionDataTooLong,
    #[error(
        "token expires at {expires_at}, more than 30 days after server time {now}: tokens may live at most {MAX_LIFETIME_SECS} s"
    )]
    LifetimeTooLong { expires_at: i64, now: i64 },
}

impl TokenError {
    /// The signaling error a client gets when its handshake is refused for this reason.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            TokenError::Missing => ErrorCode::TokenMissing,
            TokenError::UnknownFormat => ErrorCode::TokenUnknownFormat,
            TokenError::MalformedT1(_) | TokenError::MalformedJwt(_) => ErrorCode::TokenMalformed,
            TokenError::UnsupportedAlgorithm(_) => ErrorCode::TokenUnsupportedAlgorithm,
            TokenError::UnknownProject(_) => ErrorCode::TokenUnknownProject,
            TokenError::Forged => ErrorCode::TokenForged,
            TokenError::Expired { .. } => ErrorCode::TokenExpired,
            TokenError::MissingExpiry => ErrorCode::TokenMissingExpiry,
            TokenError::WrongScope(_) => ErrorCode::TokenWrongScope,
            TokenError::InvalidRole(_) => ErrorCode::TokenInvalidRole,
            TokenError::MissingSessionId => ErrorCode::TokenMissingSession,
            TokenError::WrongSession { .. } => ErrorCode::TokenWrongSession,
            TokenError::UnknownSession(_) => ErrorCode::UnknownSession,
            TokenError::WrongProject { .. } => ErrorCode::TokenWrongProject,
            TokenError::ConnectionDataTooLong => ErrorCode::TokenConnectionDataTooLong,
            TokenError::LifetimeTooLong { .. } => ErrorCode::TokenLifetimeTooLong,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    Jwt,
    T1,
}

/// What a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub format: TokenFormat,
    pub api_key: String,
    pub session_id: String,
    pub role: Role,
    pub expires_at: i64,
    pub connection_data: Option<String>,
    pub initial_layout_class_list: Vec<String>,
}

enum Proof {
    Jwt(jwt::Parsed),
    T1 { sig: Vec<u8>, data: String },
}

/// A token whose claims have been read but not yet checked.
pub struct Unverified {
    pub api_key: String,
    pub session_id: Option<String>,
    fields: Fields,
    proof: Proof,
}

#[derive(Default)]
struct Fields {
    role: Option<String>,
    scope: Option<String>,
    expires_at: Option<Result<i64, NotATime>>,
    connection_data: Option<String>,
    initial_layout_class_list: Option<String>,
}

pub fn parse(token: &str) -> Result<Unverified, TokenError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    if let Some(body) = token.strip_prefix(T1_PREFIX) {
        parse_t1(body)
    } else if token.bytes().filter(|&b| b == b'.').count() == 2 {
        parse_jwt(token)
    } else {
        Err(TokenError::UnknownFormat)
    }
}

fn parse_jwt(token: &str) -> Result<Unverified, TokenError> {
    let parsed = jwt::parse(token).map_err(|e| match e {
        JwtError::UnsupportedAlg(a) => TokenError::UnsupportedAlgorithm(a),
        JwtError::MissingAlg => TokenError::UnsupportedAlgorithm("(none given)".into()),
        other => TokenError::MalformedJwt(other.to_string()),
    })?;
    let api_key = match parsed.claims.get("iss") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        None => return Err(TokenError::MalformedJwt("no \"iss\" claim (the API key)".into())),
        Some(_) => return Err(TokenError::MalformedJwt("\"iss\" is not a string".into())),
    };
    if let Some(ist) = parsed.claims.get("ist")
        && ist.as_str() != Some("project")
    {
        return Err(TokenError::MalformedJwt("\"ist\" must be \"project\"".into()));
    }
    let text = |name: &str| -> Result<Option<String>, TokenError> {
        match parsed.claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(TokenError::MalformedJwt(format!("\"{name}\" is not a string"))),
        }
    };
    let fields = Fields {
        role: text("role")?,
        scope: text("scope")?,
        expires_at: match parsed.time_claim("exp") {
            Ok(Some(t)) => Some(Ok(t)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        },
        connection_data: text("connection_data")?,
        initial_layout_class_list: text("initial_layout_class_list")?,
    };
    let session_id = text("session_id")?;
    Ok(Unverified { api_key, session_id, fields, proof: Proof::Jwt(parsed) })
}

fn parse_t1(body: &str) -> Result<Unverified, TokenError> {
    let raw = b64::STANDARD_LENIENT.decode(body).map_err(|_| TokenError::MalformedT1("not base64"))?;
    let raw = String::from_utf8(raw).map_err(|_| TokenError::MalformedT1("not UTF-8"))?;
    let (meta, data) = raw.split_once(':').ok_or(TokenError::MalformedT1("no ':' between signature and data"))?;
    let meta: Vec<(String, String)> =
        serde_urlencoded::from_str(meta).map_err(|_| TokenError::MalformedT1("header is not form-encoded"))?;
    let get = |k: &str| meta.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let api_key = get("partner_id").ok_or(TokenError::MalformedT1("no partner_id"))?;
    let sig = get("sig").ok_or(TokenError::MalformedT1("no sig"))?;
    let sig = hex::decode(sig).map_err(|_| TokenError::MalformedT1("sig is not hex"))?;
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(data).map_err(|_| TokenError::MalformedT1("data is not form-encoded"))?;
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let fields = Fields {
        role: get("role"),
        scope: get("scope"),
        expires_at: get("expire_time").map(|t| t.trim().parse::<f64>().map(|f| f as i64).map_err(|_| NotATime)),
        connection_data: get("connection_data"),
        initial_layout_class_list: get("initial_layout_class_list"),
    };
    Ok(Unverified { api_key, session_id: get("session_id"), fields, proof: Proof::T1 { sig, data: data.to_owned() } })
}

impl Unverified {
    pub fn format(&self) -> TokenFormat {
        match self.proof {
            Proof::Jwt(_) => TokenFormat::Jwt,
            Proof::T1 { .. } => TokenFormat::T1,
        }
    }

    fn signature_ok(&self, secret: &[u8]) -> bool {
        match &self.proof {
            Proof::Jwt(p) => p.verify(secret),
            Proof::T1 { sig, data } => {
                let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
                hmac::verify(&key, data.as_bytes(), sig).is_ok()
            }
        }
    }

    /// `requested` is the session the client asked to join, when it named one apart from the
    /// token. `project` is the project named by [`Unverified::api_key`], `session` the session
    /// named by the token (or `requested`).
    pub fn verify(
        self,
        requested: Option<&str>,
        project: Option<&Project>,
        session: Option<&Session>,
        now: i64,
        skew: i64,
    ) -> Result<Grant, TokenError> {
        let project = project.ok_or_else(|| TokenError::UnknownProject(self.api_key.clone()))?;
        if !self.signature_ok(project.secret.as_bytes()) {
            return Err(TokenError::Forged);
        }
        let f = &self.fields;
        let expires_at = match f.expires_at {
            None => return Err(TokenError::MissingExpiry),
            Some(Err(NotATime)) => {
                return Err(match self.format() {
                    TokenFormat::T1 => TokenError::MalformedT1("expire_time is not a number"),
                    TokenFormat::Jwt => TokenError::MalformedJwt("\"exp\" is not a number".into()),
                });
            }
            Some(Ok(t)) => t,
        };
        // Saturating: `exp` is whatever the signer wrote, up to i64::MAX.
        if expires_at.saturating_add(skew) < now {
            return Err(TokenError::Expired { expired_at: expires_at, now });
        }
        if expires_at > now.saturating_add(MAX_LIFETIME_SECS).saturating_add(skew) {
            return Err(TokenError::LifetimeTooLong { expires_at, now });
        }
        // T1 tokens from the Python SDK carry no scope; JWTs always do.
        match (&f.scope, self.format()) {
            (Some(s), _) if s == "session.connect" => {}
            (None, TokenFormat::T1) => {}
            (Some(s), _) => return Err(TokenError::WrongScope(s.clone())),
            (None, TokenFormat::Jwt) => return Err(TokenError::WrongScope(String::new())),
        }
        let role = match &f.role {
            None => Role::Publisher,
            Some(r) => Role::parse(r).ok_or_else(|| TokenError::InvalidRole(r.clone()))?,
        };
        let token_session = self.session_id.clone().filter(|s| !s.is_empty()).ok_or(TokenError::MissingSessionId)?;
        if let Some(req) = requested
            && req != token_session
        {
            return Err(TokenError::WrongSession { token_session, requested: req.to_owned() });
        }
        let session = session.ok_or_else(|| TokenError::UnknownSession(token_session.clone()))?;
        if session.api_key != project.api_key {
            return Err(TokenError::WrongProject { token_project: project.api_key.clone() });
        }
        if f.connection_data.as_ref().is_some_and(|d| d.len() > MAX_CONNECTION_DATA) {
            return Err(TokenError::ConnectionDataTooLong);
        }
        Ok(Grant {
            format: self.format(),
            api_key: project.api_key.clone(),
            session_id: token_session,
            role,
            expires_at,
            connection_data: f.connection_data.clone(),
            initial_layout_class_list: f
                .initial_layout_class_list
                .as_deref()
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// Builds a T1 token the way the SDKs do. `data` must already be form-encoded.
pub fn sign_t1(api_key: &str, secret: &str, data: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret.as_bytes());
    let sig = hex::encode(hmac::sign(&key, data.as_bytes()).as_ref());
    format!("{T1_PREFIX}{}", b64::STANDARD.encode(format!("partner_id={api_key}&sig={sig}:{data}")))
}

/// A JWT client token as the SDKs make it. For the CLI, tests and benchmark.
pub fn sign_jwt(
    api_key: &str,
    secret: &str,
    session_id: &str,
    role: Role,
    expires_at: i64,
    data: Option<&str>,
) -> String {
    let now = crate::clock::now_secs();
    let mut claims = serde_json::json!({
        "iss": api_key, "ist": "project", "iat": now, "exp": expires_at,
        "scope": "session.connect", "session_id": session_id, "role": role.as_str(),
        "nonce": crate::ids::new_id(), "create_time": now,
    });
    if let Some(d) = data {
        claims["connection_data"] = Value::String(d.to_owned());
    }
    jwt::sign_hs256(&claims, secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ArchiveMode, MediaMode};

    fn fixtures() -> (Project, Session) {
        let p = Project {
            api_key: "12345678".into(),
            name: "p".into(),
            secret: "ab".repeat(20),
            e2ee_enabled: true,
            created_ms: 0,
        };
        let s = Session {
            id: "1_sess".into(),
            api_key: p.api_key.clone(),
            media_mode: MediaMode::Routed,
            archive_mode: ArchiveMode::Manual,
            location: None,
            cipher_suite: Some(6),
            archive_name: None,
            archive_resolution: None,
            created_ms: 0,
        };
        (p, s)
    }

    #[test]
    fn t1_signature_covers_data_as_received() {
        let (p, s) = fixtures();
        for data in [
            "session_id=1_sess&role=moderator&expire_time=4000000000&connection_data=a+b",
            "session_id=1_sess&role=moderator&expire_time=4000000000&connection_data=a%20b",
        ] {
            let t = sign_t1(&p.api_key, &p.secret, data);
            let g = parse(&t).unwrap().verify(None, Some(&p), Some(&s), 3_999_999_000, 0).unwrap();
            assert_eq!(
                (g.role, g.connection_data.as_deref(), g.format),
                (Role::Moderator, Some("a b"), TokenFormat::T1)
            );
        }
        let t = sign_t1(&p.api_key, "wrong", "session_id=1_sess&expire_time=4000000000");
        assert_eq!(parse(&t).unwrap().verify(None, Some(&p), Some(&s), 3_999_999_000, 0), Err(TokenError::Forged));
    }

    #[test]
    fn every_token_error_is_a_handshake_refusal_code() {
        let errors = [
            TokenError::Missing,
            TokenError::UnknownFormat,
            TokenError::MalformedT1("x"),
            TokenError::MalformedJwt("x".into()),
            TokenError::UnsupportedAlgorithm("none".into()),
            TokenError::UnknownProject("1".into()),
            TokenError::Forged,
            TokenError::Expired { expired_at: 1, now: 2 },
            TokenError::MissingExpiry,
            TokenError::WrongScope("x".into()),
            TokenError::InvalidRole("x".into()),
            TokenError::MissingSessionId,
            TokenError::WrongSession { token_session: "a".into(), requested: "b".into() },
            TokenError::UnknownSession("s".into()),
            TokenError::WrongProject { token_project: "1".into() },
            TokenError::ConnectionDataTooLong,
            TokenError::LifetimeTooLong { expires_at: 1, now: 0 },
        ];
        for e in &errors {
            assert!(e.error_code().is_token_error(), "{e:?} -> {}", e.error_code());
        }
    }

    #[test]
    fn jwt_errors_are_distinct() {
        let (p, s) = fixtures();
        let ok = sign_jwt(&p.api_key, &p.secret, &s.id, Role::Subscriber, 1000, Some("x"));
        let g = parse(&ok).unwrap().verify(Some("1_sess"), Some(&p), Some(&s), 900, 0).unwrap();
        assert_eq!((g.role, g.session_id.as_str()), (Role::Subscriber, "1_sess"));
        let e = parse(&ok).unwrap().verify(None, Some(&p), Some(&s), 2000, 30).unwrap_err();
        assert!(matches!(e, TokenError::Expired { .. }));
        let e = parse(&ok).unwrap().verify(Some("1_other"), Some(&p), Some(&s), 900, 0).unwrap_err();
        assert!(matches!(e, TokenError::WrongSession { .. }));
        let mut other = s.clone();
        other.api_key = "87654321".into();
        let e = parse(&ok).unwrap().verify(None, Some(&p), Some(&other), 900, 0).unwrap_err();
        assert!(matches!(e, TokenError::WrongProject { .. }));
        assert!(matches!(parse(&ok).unwrap().verify(None, None, Some(&s), 900, 0), Err(TokenError::UnknownProject(_))));
        assert!(matches!(parse(&ok).unwrap().verify(None, Some(&p), None, 900, 0), Err(TokenError::UnknownSession(_))));
        assert_eq!(parse("").err(), Some(TokenError::Missing));
        assert_eq!(parse("hello").err(), Some(TokenError::UnknownFormat));
        assert!(matches!(parse("T1==%%%"), Err(TokenError::MalformedT1(_))));
    }

    #[test]
    fn extreme_expiry_times_neither_overflow_nor_pass() {
        let (p, s) = fixtures();
        let now = 1_800_000_000;
        let verify = |exp: &str, skew: i64| {
            let t = sign_t1(&p.api_key, &p.secret, &format!("session_id=1_sess&expire_time={exp}"));
            parse(&t).unwrap().verify(None, Some(&p), Some(&s), now, skew)
        };
        for exp in [i64::MAX.to_string(), "1e300".into(), format!("{}", now + MAX_LIFETIME_SECS + 31)] {
            assert!(matches!(verify(&exp, 30), Err(TokenError::LifetimeTooLong { .. })), "{exp}");
        }
        assert!(verify(&(now + MAX_LIFETIME_SECS).to_string(), 0).is_ok());
        for exp in [i64::MIN.to_string(), "-1e300".into()] {
            assert!(matches!(verify(&exp, i64::MAX), Err(TokenError::Expired { .. })), "{exp}");
        }
        let jwt = sign_jwt(&p.api_key, &p.secret, &s.id, Role::Publisher, i64::MAX, None);
        assert!(matches!(
            parse(&jwt).unwrap().verify(None, Some(&p), Some(&s), now, 30),
            Err(TokenError::LifetimeTooLong { .. })
        ));
    }
}
