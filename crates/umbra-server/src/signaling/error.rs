//! A refused request or handshake, as the client will read it.

use umbra_protocol::{ErrorCode, RequestId, ServerMessage};

use crate::media_router::MediaError;
use crate::token::TokenError;

/// Sent as `{"type": "error", "id": …, "code": …, "message": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigError {
    pub code: ErrorCode,
    pub message: String,
}

impl SigError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// The connection ended while one of its requests was under way.
    pub fn ended() -> Self {
        Self::new(ErrorCode::NotConnected, "this connection has ended")
    }

    pub fn to_message(&self, id: Option<RequestId>) -> ServerMessage {
        ServerMessage::Error { id, code: self.code, message: self.message.clone() }
    }
}

impl From<TokenError> for SigError {
    fn from(e: TokenError) -> Self {
        SigError::new(e.error_code(), e.to_string())
    }
}

impl From<MediaError> for SigError {
    fn from(e: MediaError) -> Self {
        SigError::new(e.code(), e.to_string())
    }
}
