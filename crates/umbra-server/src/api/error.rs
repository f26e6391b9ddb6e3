//! The REST error body, `{"code": n, "message": "…"}`, the shape OpenTok's SDKs expect.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::project_auth::AuthError;
use crate::store::StoreError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

/// Numeric codes. 1xxx REST auth, 3xxx bad input, 40xx E2EE rules, 5xxx not found,
/// 6xxx not implemented, 9xxx server faults. Documented in docs/server.md.
pub mod codes {
    pub const INVALID_PARAMETER: u32 = 3001;
    pub const MALFORMED_BODY: u32 = 3002;
    pub const ARCHIVE_ALWAYS_NEEDS_ROUTED: u32 = 3003;
    pub const BODY_TOO_LARGE: u32 = 3004;
    pub const REQUEST_TIMEOUT: u32 = 3005;
    pub const HOST_NOT_ALLOWED: u32 = 3006;
    pub const E2EE_ADDON_DISABLED: u32 = 4001;
    pub const E2EE_NEEDS_ROUTED: u32 = 4002;
    pub const E2EE_NO_ALWAYS_ARCHIVE: u32 = 4003;
    pub const E2EE_BAD_CIPHER_SUITE: u32 = 4004;
    pub const E2EE_FEATURE_REFUSED: u32 = 4009;
    pub const UNKNOWN_SESSION: u32 = 5001;
    pub const UNKNOWN_CONNECTION: u32 = 5002;
    pub const UNKNOWN_STREAM: u32 = 5003;
    pub const UNKNOWN_ROUTE: u32 = 5004;
    pub const METHOD_NOT_ALLOWED: u32 = 5005;
    pub const NOT_IMPLEMENTED: u32 = 6001;
    pub const INTERNAL: u32 = 9001;
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn not_found(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

/// A JSON response with `Content-Type` exactly `application/json` (the Python SDK compares it
/// byte for byte).
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.status, &serde_json::json!({"code": self.code, "message": self.message}))
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL, "the server could not use its store")
    }
}
