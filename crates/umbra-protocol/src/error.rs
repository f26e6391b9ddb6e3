//! Every error code the server sends (signaling.md § Handshake, § Errors to requests).

use serde::{Deserialize, Serialize};

use crate::model::wire;

wire! {
/// The `code` of an `error` message.
///
/// Handshake codes (token, version, timeout, resume, and the session and token connection limits)
/// come with `id: null` and close the socket with 4003; the others answer one request and leave the
/// socket open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    // ---- handshake: the token ----
    TokenMissing,
    TokenUnknownFormat,
    TokenMalformed,
    TokenUnsupportedAlgorithm,
    TokenUnknownProject,
    TokenForged,
    TokenExpired,
    TokenMissingExpiry,
    TokenWrongScope,
    TokenInvalidRole,
    TokenMissingSession,
    TokenWrongSession,
    TokenWrongProject,
    TokenConnectionDataTooLong,
    /// The token expires more than 30 days after it is presented.
    TokenLifetimeTooLong,
    UnknownSession,
    // ---- handshake: the socket ----
    UnsupportedVersion,
    HandshakeTimeout,
    // ---- resume ----
    ResumeUnknownConnection,
    ResumeBadToken,
    ResumeGap,
    ResumeBadSeq,
    // ---- requests (and a first message that is not a valid connect/resume) ----
    BadRequest,
    NotConnected,
    AlreadyConnected,
    RoleForbidden,
    E2eeRequired,
    E2eeCipherSuiteMismatch,
    E2eeNotEnabled,
    UnknownStream,
    UnknownSubscription,
    UnknownConnection,
    NotOwner,
    // ---- the media router ----
    MediaRouterUnavailable,
    MediaBadSdp,
    MediaUnknownStream,
    MediaUnknownTarget,
    MediaRouterFailed,
    // ---- limits: the server bounds what one client can make it hold ----
    /// Handshake: the session has as many connections as the server admits.
    SessionFull,
    /// Handshake: this token already has as many live connections as the server admits.
    TooManyTokenConnections,
    /// This connection already publishes as many streams as the server admits.
    TooManyStreams,
    /// The session already has as many streams as the server admits.
    TooManySessionStreams,
    /// This connection already has as many subscriptions as the server admits.
    TooManySubscriptions,
    /// This connection sent signals faster (in count or bytes) than the server admits.
    SignalRateLimited,
    /// A code this build does not know (from a newer server); clients treat it as a refusal.
    /// The server never sends it.
    #[serde(other)]
    #[cfg_attr(feature = "typescript", ts(skip))]
    Unrecognized,
}
}

impl ErrorCode {
    /// Every code the server can send, in declaration order.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::TokenMissing,
        ErrorCode::TokenUnknownFormat,
        ErrorCode::TokenMalformed,
        ErrorCode::TokenUnsupportedAlgorithm,
        ErrorCode::TokenUnknownProject,
        ErrorCode::TokenForged,
        ErrorCode::TokenExpired,
        ErrorCode::TokenMissingExpiry,
        ErrorCode::TokenWrongScope,
        ErrorCode::TokenInvalidRole,
        ErrorCode::TokenMissingSession,
        ErrorCode::TokenWrongSession,
        ErrorCode::TokenWrongProject,
        ErrorCode::TokenConnectionDataTooLong,
        ErrorCode::TokenLifetimeTooLong,
        ErrorCode::UnknownSession,
        ErrorCode::UnsupportedVersion,
        ErrorCode::HandshakeTimeout,
        ErrorCode::ResumeUnknownConnection,
        ErrorCode::ResumeBadToken,
        ErrorCode::ResumeGap,
        ErrorCode::ResumeBadSeq,
        ErrorCode::BadRequest,
        ErrorCode::NotConnected,
        ErrorCode::AlreadyConnected,
        ErrorCode::RoleForbidden,
        ErrorCode::E2eeRequired,
        ErrorCode::E2eeCipherSuiteMismatch,
        ErrorCode::E2eeNotEnabled,
        ErrorCode::UnknownStream,
        ErrorCode::UnknownSubscription,
        ErrorCode::UnknownConnection,
        ErrorCode::NotOwner,
        ErrorCode::MediaRouterUnavailable,
        ErrorCode::MediaBadSdp,
        ErrorCode::MediaUnknownStream,
        ErrorCode::MediaUnknownTarget,
        ErrorCode::MediaRouterFailed,
        ErrorCode::SessionFull,
        ErrorCode::TooManyTokenConnections,
        ErrorCode::TooManyStreams,
        ErrorCode::TooManySessionStreams,
        ErrorCode::TooManySubscriptions,
        ErrorCode::SignalRateLimited,
    ];

    /// The wire name (`"token_expired"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::TokenMissing => "token_missing",
            ErrorCode::TokenUnknownFormat => "token_unknown_format",
            ErrorCode::TokenMalformed => "token_malformed",
            ErrorCode::TokenUnsupportedAlgorithm => "token_unsupported_algorithm",
            ErrorCode::TokenUnknownProject => "token_unknown_project",
            ErrorCode::TokenForged => "token_forged",
            ErrorCode::TokenExpired => "token_expired",
            ErrorCode::TokenMissingExpiry => "token_missing_expiry",
            ErrorCode::TokenWrongScope => "token_wrong_scope",
            ErrorCode::TokenInvalidRole => "token_invalid_role",
            ErrorCode::TokenMissingSession => "token_missing_session",
            ErrorCode::TokenWrongSession => "token_wrong_session",
            ErrorCode::TokenWrongProject => "token_wrong_project",
            ErrorCode::TokenConnectionDataTooLong => "token_connection_data_too_long",
            ErrorCode::TokenLifetimeTooLong => "token_lifetime_too_long",
            ErrorCode::UnknownSession => "unknown_session",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::HandshakeTimeout => "handshake_timeout",
            ErrorCode::ResumeUnknownConnection => "resume_unknown_connection",
            ErrorCode::ResumeBadToken => "resume_bad_token",
            ErrorCode::ResumeGap => "resume_gap",
            ErrorCode::ResumeBadSeq => "resume_bad_seq",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotConnected => "not_connected",
            ErrorCode::AlreadyConnected => "already_connected",
            ErrorCode::RoleForbidden => "role_forbidden",
            ErrorCode::E2eeRequired => "e2ee_required",
            ErrorCode::E2eeCipherSuiteMismatch => "e2ee_cipher_suite_mismatch",
            ErrorCode::E2eeNotEnabled => "e2ee_not_enabled",
            ErrorCode::UnknownStream => "unknown_stream",
            ErrorCode::UnknownSubscription => "unknown_subscription",
            ErrorCode::UnknownConnection => "unknown_connection",
            ErrorCode::NotOwner => "not_owner",
            ErrorCode::MediaRouterUnavailable => "media_router_unavailable",
            ErrorCode::MediaBadSdp => "media_bad_sdp",
            ErrorCode::MediaUnknownStream => "media_unknown_stream",
            ErrorCode::MediaUnknownTarget => "media_unknown_target",
            ErrorCode::MediaRouterFailed => "media_router_failed",
            ErrorCode::SessionFull => "session_full",
            ErrorCode::TooManyTokenConnections => "too_many_token_connections",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::TooManySessionStreams => "too_many_session_streams",
            ErrorCode::TooManySubscriptions => "too_many_subscriptions",
            ErrorCode::SignalRateLimited => "signal_rate_limited",
            ErrorCode::Unrecognized => "unrecognized",
        }
    }

    /// A token or the server refused who the client is: connecting again with the same token
    /// will not help.
    pub fn is_token_error(self) -> bool {
        matches!(
            self,
            ErrorCode::TokenMissing
                | ErrorCode::TokenUnknownFormat
                | ErrorCode::TokenMalformed
                | ErrorCode::TokenUnsupportedAlgorithm
                | ErrorCode::TokenUnknownProject
                | ErrorCode::TokenForged
                | ErrorCode::TokenExpired
                | ErrorCode::TokenMissingExpiry
                | ErrorCode::TokenWrongScope
                | ErrorCode::TokenInvalidRole
                | ErrorCode::TokenMissingSession
                | ErrorCode::TokenWrongSession
                | ErrorCode::TokenWrongProject
                | ErrorCode::TokenConnectionDataTooLong
                | ErrorCode::TokenLifetimeTooLong
                | ErrorCode::UnknownSession
        )
    }

    /// A resume was refused: the client connects anew with a token.
    pub fn is_resume_error(self) -> bool {
        matches!(
            self,
            ErrorCode::ResumeUnknownConnection
                | ErrorCode::ResumeBadToken
                | ErrorCode::ResumeGap
                | ErrorCode::ResumeBadSeq
        )
    }

    /// The media router refused or failed (routed sessions).
    pub fn is_media_error(self) -> bool {
        matches!(
            self,
            ErrorCode::MediaRouterUnavailable
                | ErrorCode::MediaBadSdp
                | ErrorCode::MediaUnknownStream
                | ErrorCode::MediaUnknownTarget
                | ErrorCode::MediaRouterFailed
        )
    }

    /// A server limit refused the request or the handshake; trying again later (after a stream,
    /// subscription or connection has ended, or more slowly) may succeed.
    pub fn is_limit_error(self) -> bool {
        matches!(
            self,
            ErrorCode::SessionFull
                | ErrorCode::TooManyTokenConnections
                | ErrorCode::TooManyStreams
                | ErrorCode::TooManySessionStreams
                | ErrorCode::TooManySubscriptions
                | ErrorCode::SignalRateLimited
        )
    }

    /// The session's end-to-end encryption rules refused a publish.
    pub fn is_e2ee_error(self) -> bool {
        matches!(self, ErrorCode::E2eeRequired | ErrorCode::E2eeCipherSuiteMismatch | ErrorCode::E2eeNotEnabled)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
