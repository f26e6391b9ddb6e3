//! Request bodies with a per-route size limit. A handler takes [`Limited`] as its last argument,
//! after its authentication extractors, so nobody's body is read before the caller is known;
//! a declared `Content-Length` over the limit is refused before a byte of the body is read, and a
//! body that turns out longer (chunked) is cut off at the limit.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};

use super::error::{ApiError, codes};
use umbra_protocol::limits::{MAX_CONNECTION_DATA, MAX_SIGNAL_DATA, MAX_SIGNAL_TYPE};

/// `POST /session/create`: a handful of short form fields.
pub const SESSION_CREATE: usize = 8 * 1024;
/// A signal's JSON: `data` and `type` at their maximum, each character possibly escaped as `\uXXXX`.
pub const SIGNAL: usize = 6 * (MAX_SIGNAL_DATA + MAX_SIGNAL_TYPE) + 1024;
/// `mute`: a list of stream ids to leave alone.
pub const MUTE: usize = 64 * 1024;
/// Archive, broadcast and the other media features: a session id and options.
pub const MEDIA_FEATURE: usize = 16 * 1024;
/// `POST /demo/token`: a room and a display name.
pub const DEMO_TOKEN: usize = 4 * 1024 + 6 * MAX_CONNECTION_DATA;

pub struct Limited<const MAX: usize>(pub Bytes);

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        codes::BODY_TOO_LARGE,
        format!("request body is larger than the {max} bytes this endpoint accepts"),
    )
}

impl<S: Send + Sync, const MAX: usize> FromRequest<S> for Limited<MAX> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX as u64) {
            return Err(too_large(MAX));
        }
        match axum::body::to_bytes(req.into_body(), MAX).await {
            Ok(bytes) => Ok(Limited(bytes)),
            Err(e) if is_length_limit(&e) => Err(too_large(MAX)),
            Err(e) => Err(ApiError::bad_request(codes::MALFORMED_BODY, format!("cannot read the request body: {e}"))),
        }
    }
}

fn is_length_limit(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = err.source();
    }
    false
}
