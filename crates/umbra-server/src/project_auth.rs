//! Authentication of REST calls: the `X-OPENTOK-AUTH` header, an HS256 JWT that the app's server
//! signs with its project secret (`iss` = API key, `ist` = `project`, `iat`, `exp`).

use crate::jwt::{self, JwtError};
use crate::model::Project;

pub const HEADER: &str = "x-opentok-auth";

/// The SDKs issue these with 180 s (Python) or 300 s (Node) of life; a longer one is a leaked
/// credential waiting to happen, so anything past this (plus skew) is refused.
pub const MAX_LIFETIME_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing X-OPENTOK-AUTH header: sign a JWT with your project secret")]
    MissingHeader,
    #[error("X-OPENTOK-AUTH is not a JWT: expected three dot-separated base64url segments")]
    NotAJwt,
    #[error("X-OPENTOK-AUTH {0} segment is not valid base64url")]
    BadBase64(&'static str),
    #[error("X-OPENTOK-AUTH {0} segment is not a JSON object")]
    BadJson(&'static str),
    #[error("X-OPENTOK-AUTH algorithm {0} is not accepted; sign with HS256")]
    UnsupportedAlgorithm(String),
    #[error("X-OPENTOK-AUTH has no {0:?} claim")]
    MissingClaim(&'static str),
    #[error("X-OPENTOK-AUTH claim {0:?} has the wrong type")]
    InvalidClaim(&'static str),
    #[error("X-OPENTOK-AUTH claim \"ist\" is {0:?}; it must be \"project\"")]
    WrongIssuerType(String),
    #[error("no project has API key {0:?}")]
    UnknownProject(String),
    #[error("X-OPENTOK-AUTH signature does not match the project secret")]
    BadSignature,
    #[error("X-OPENTOK-AUTH expired at {exp} (server time {now})")]
    Expired { exp: i64, now: i64 },
    #[error("X-OPENTOK-AUTH was issued in the future (iat {iat}, server time {now}); check the clock")]
    IssuedInFuture { iat: i64, now: i64 },
    #[error("X-OPENTOK-AUTH lives too long (exp {exp}, server time {now}); at most {MAX_LIFETIME_SECS} s is accepted")]
    LifetimeTooLong { exp: i64, now: i64 },
    #[error("X-OPENTOK-AUTH is for API key {token} but the URL names project {path}")]
    ProjectMismatch { token: String, path: String },
}

impl AuthError {
    pub fn code(&self) -> u32 {
        match self {
            AuthError::MissingHeader => 1001,
            AuthError::NotAJwt => 1002,
            AuthError::BadBase64(_) => 1003,
            AuthError::BadJson(_) => 1004,
            AuthError::UnsupportedAlgorithm(_) => 1005,
            AuthError::MissingClaim(_) => 1006,
            AuthError::InvalidClaim(_) => 1007,
            AuthError::WrongIssuerType(_) => 1008,
            AuthError::UnknownProject(_) => 1009,
            AuthError::BadSignature => 1010,
            AuthError::Expired { .. } => 1011,
            AuthError::IssuedInFuture { .. } => 1012,
            AuthError::LifetimeTooLong { .. } => 1013,
            AuthError::ProjectMismatch { .. } => 1014,
        }
    }
}

impl From<JwtError> for AuthError {
    fn from(e: JwtError) -> Self {
        match e {
            JwtError::NotThreeSegments => AuthError::NotAJwt,
            JwtError::BadBase64(w) => AuthError::BadBase64(w),
            JwtError::BadJson(w) => AuthError::BadJson(w),
            JwtError::MissingAlg => AuthError::UnsupportedAlgorithm("(none given)".into()),
            JwtError::UnsupportedAlg(a) => AuthError::UnsupportedAlgorithm(a),
        }
    }
}

/// What a header claims before the project is looked up.
pub struct Claimed {
    pub api_key: String,
    parsed: jwt::Parsed,
}

/// First half: parse and read `iss`, so the caller can load the project (from the store, which
/// may block) and hand it to [`Claimed::verify`].
pub fn parse(header: Option<&str>) -> Result<Claimed, AuthError> {
    let header = header.map(str::trim).filter(|h| !h.is_empty()).ok_or(AuthError::MissingHeader)?;
    let parsed = jwt::parse(header)?;
    let api_key = match parsed.claims.get("iss") {
        None => return Err(AuthError::MissingClaim("iss")),
        Some(serde_json::Value::String(s)) => s.clone(),
        // Some clients put the numeric API key in as a number.
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(_) => return Err(AuthError::InvalidClaim("iss")),
    };
    Ok(Claimed { api_key, parsed })
}

impl Claimed {
    pub fn verify(&self, project: Option<&Project>, now: i64, skew: i64) -> Result<(), AuthError> {
        let p = &self.parsed;
        match p.claims.get("ist") {
            None => return Err(AuthError::MissingClaim("ist")),
            Some(serde_json::Value::String(s)) if s == "project" => {}
            Some(serde_json::Value::String(s)) => return Err(AuthError::WrongIssuerType(s.clone())),
            Some(_) => return Err(AuthError::InvalidClaim("ist")),
        }
        let project = project.ok_or_else(|| AuthError::UnknownProject(self.api_key.clone()))?;
        if !p.verify(project.secret.as_bytes()) {
            return Err(AuthError::BadSignature);
        }
        // Time checks come after the signature so that nobody learns anything from unsigned input.
        let exp =
            p.time_claim("exp").map_err(|_| AuthError::InvalidClaim("exp"))?.ok_or(AuthError::MissingClaim("exp"))?;
        let iat =
            p.time_claim("iat").map_err(|_| AuthError::InvalidClaim("iat"))?.ok_or(AuthError::MissingClaim("iat"))?;
        // Saturating: the claims are whatever the signer wrote, up to i64::MAX.
        if exp.saturating_add(skew) < now {
            return Err(AuthError::Expired { exp, now });
        }
        if iat > now.saturating_add(skew) {
            return Err(AuthError::IssuedInFuture { iat, now });
        }
        if exp > now.saturating_add(MAX_LIFETIME_SECS).saturating_add(skew) {
            return Err(AuthError::LifetimeTooLong { exp, now });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extreme_times_neither_overflow_nor_pass() {
        let p = Project {
            api_key: "1".into(),
            name: "p".into(),
            secret: "s".repeat(40),
            e2ee_enabled: false,
            created_ms: 0,
        };
        let now = 1_800_000_000;
        let check = |iat: i64, exp: i64, skew: i64| {
            let h =
                jwt::sign_hs256(&json!({"iss": "1", "ist": "project", "iat": iat, "exp": exp}), p.secret.as_bytes());
            parse(Some(&h)).unwrap().verify(Some(&p), now, skew)
        };
        assert_eq!(check(now, now + 180, 30), Ok(()));
        assert!(matches!(check(now, i64::MAX, 30), Err(AuthError::LifetimeTooLong { .. })));
        assert!(matches!(check(now, i64::MIN, i64::from(u32::MAX)), Err(AuthError::Expired { .. })));
        assert!(matches!(check(now, i64::MIN, 30), Err(AuthError::Expired { .. })));
        assert!(matches!(check(i64::MAX, now + 60, 30), Err(AuthError::IssuedInFuture { .. })));
    }
}
