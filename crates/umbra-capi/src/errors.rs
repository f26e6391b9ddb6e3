//! Status and error codes, their strings, and how native SDK errors map onto them.
//!
//! Every code has one value across all the enums, so `otc_error_string` can name any code a
//! function returns or a callback reports. Codes that mean the same thing in two enums (a
//! missing secret for the session and for a publisher) share the value, so C code may compare
//! either name.

use std::ffi::{CStr, c_char, c_int};

use umbra_client::{ClientError, ErrorCode};

/// Result of a function: `OTC_SUCCESS` or one of the error codes below.
#[allow(non_camel_case_types)]
pub type otc_status = c_int;

/// A C boolean: `OTC_TRUE` or `OTC_FALSE`.
#[allow(non_camel_case_types)]
pub type otc_bool = c_int;

pub const OTC_TRUE: otc_bool = 1;
pub const OTC_FALSE: otc_bool = 0;

/// The call succeeded.
pub const OTC_SUCCESS: otc_status = 0;
/// A pointer argument was NULL, a string was not UTF-8, or a value was out of range.
pub const OTC_INVALID_PARAMETER: otc_status = 1011;
/// The call is not allowed in the object's current state (e.g. publishing a publisher that is
/// already published, deleting a session from its own callback, calling before `otc_init`).
pub const OTC_ILLEGAL_STATE: otc_status = 1015;
/// An unexpected failure inside the SDK (including a caught internal panic).
pub const OTC_INTERNAL_ERROR: otc_status = 2000;

/// Errors of a session: returned by `otc_session_*` functions and reported to
/// `otc_session_callbacks.on_error`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otc_session_error_code {
    /// The server refused the token (expired, forged, wrong session, ...).
    OTC_SESSION_AUTHORIZATION_FAILURE = 1004,
    /// The session does not exist on the server.
    OTC_SESSION_INVALID_SESSION = 1005,
    /// The server could not be reached, or the signaling connection failed.
    OTC_SESSION_CONNECTION_FAILED = 1006,
    /// The call needs a connected session.
    OTC_SESSION_NOT_CONNECTED = 1010,
    /// A NULL or invalid argument (same value as `OTC_INVALID_PARAMETER`).
    OTC_SESSION_NULL_OR_INVALID_PARAMETER = 1011,
    /// Not allowed now (e.g. connecting twice); same value as `OTC_ILLEGAL_STATE`.
    OTC_SESSION_ILLEGAL_STATE = 1015,
    /// The server refused a request of this client.
    OTC_SESSION_CONNECTION_REFUSED = 1023,
    /// `otc_session_set_encryption_secret` was given a secret that breaks the rule (8 to 256
    /// Unicode characters). Returned by that function, never reported to `on_error`.
    OTC_SESSION_INVALID_ENCRYPTION_SECRET = 1570,
    /// Connecting, publishing or subscribing in an end-to-end encrypted session without a
    /// secret. On connect it is reported to `on_error` and the session stays connected.
    OTC_SESSION_ENCRYPTION_SECRET_MISSING = 1571,
    /// The session uses a cipher suite this SDK does not implement.
    OTC_SESSION_UNSUPPORTED_CIPHER_SUITE = 1572,
    /// An end-to-end encrypted signal could not be opened (another secret, altered, replayed,
    /// malformed, or no secret here); its content is not delivered. Reported to `on_error` only
    /// when no `on_signal_decryption_failed` is set (`otc_session_set_signal_callbacks`), which
    /// also says why.
    OTC_SESSION_SIGNAL_DECRYPTION_FAILED = 1573,
    /// An unexpected failure inside the SDK.
    OTC_SESSION_INTERNAL_ERROR = 2000,
    /// The server sent a message this SDK cannot use (one that does not parse, a type from a
    /// newer server, or one out of place). Reported to `on_error`; the message is ignored and
    /// the session stays connected.
    OTC_SESSION_UNEXPECTED_SERVER_MESSAGE = 2001,
}

/// Errors of a publisher: returned by `otc_session_publish` and reported to
/// `otc_publisher_callbacks.on_error`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otc_publisher_error_code {
    /// The publisher's session is not connected.
    OTC_PUBLISHER_SESSION_DISCONNECTED = 1010,
    /// The server refused the stream, or the publisher's settings cannot be published.
    OTC_PUBLISHER_UNABLE_TO_PUBLISH = 1500,
    /// Publishing in an end-to-end encrypted session without a secret (same value as
    /// `OTC_SESSION_ENCRYPTION_SECRET_MISSING`).
    OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING = 1571,
    /// Encrypting a frame failed.
    OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR = 1580,
    /// The media connection to the router (or a subscriber) failed, or the router reported
    /// that it lost it.
    OTC_PUBLISHER_WEBRTC_ERROR = 1610,
    /// An unexpected failure inside the SDK (encoder included).
    OTC_PUBLISHER_INTERNAL_ERROR = 2000,
}

/// Errors of a subscriber: returned by `otc_session_subscribe` and reported to
/// `otc_subscriber_callbacks.on_error`.
#[allow(non_camel_case_types)]
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum otc_subscriber_error_code {
    /// The subscriber's session is not connected.
    OTC_SUBSCRIBER_SESSION_DISCONNECTED = 1010,
    /// Subscribing in an end-to-end encrypted session without a secret (same value as
    /// `OTC_SESSION_ENCRYPTION_SECRET_MISSING`).
    OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISSING = 1571,
    /// Frames of the stream do not decrypt with this client's secret: the publisher uses
    /// another one. Reported once per mismatch (`on_encryption_secret_match` follows when
    /// frames decrypt again).
    OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH = 1590,
    /// Decrypting a frame failed for another reason than a different secret.
    OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR = 1591,
    /// The publisher declared end-to-end encryption but sends plain, unencrypted media (its
    /// app does not encrypt). Nothing of it is rendered. Not a secret mismatch: no secret on
    /// this side helps; show "this participant's app does not encrypt". Reported once until
    /// frames decrypt again (`on_encryption_secret_match` then follows).
    OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED = 1592,
    /// The media connection failed, or the router lost or closed it (`on_disconnected`
    /// follows: the subscription is over).
    OTC_SUBSCRIBER_WEBRTC_ERROR = 1600,
    /// The server refused the subscription.
    OTC_SUBSCRIBER_UNABLE_TO_SUBSCRIBE = 1602,
    /// The stream is not (or no longer) in the session.
    OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM = 1604,
    /// An unexpected failure inside the SDK (decoder included).
    OTC_SUBSCRIBER_INTERNAL_ERROR = 2000,
}

/// Static, NUL-terminated text of a code (never freed by the caller).
pub(crate) fn error_cstr(code: c_int) -> &'static CStr {
    match code {
        OTC_SUCCESS => c"success",
        1004 => c"authorization failure: the server refused the token",
        1005 => c"invalid session: the session does not exist",
        1006 => c"connection failed: the server could not be reached or the signaling connection failed",
        1010 => c"not connected to a session",
        OTC_INVALID_PARAMETER => c"NULL or invalid parameter",
        OTC_ILLEGAL_STATE => c"illegal state: the call is not allowed now",
        1023 => c"connection refused: the server refused the request",
        1500 => c"unable to publish",
        1570 => c"invalid encryption secret: it must be 8 to 256 characters",
        1571 => c"encryption secret missing: this session is end-to-end encrypted, set an encryption secret first",
        1572 => c"the session's cipher suite is not supported",
        1573 => c"an end-to-end encrypted signal could not be decrypted",
        1574 => c"signal encryption secret mismatch: the signal does not authenticate with this encryption secret",
        1575 => c"replayed signal: this signal was already received from its sender",
        1576 => c"signal decryption internal error: the encrypted signal is malformed",
        1580 => c"publisher encryption internal error",
        1590 => c"encryption secret mismatch: the stream cannot be decrypted with this encryption secret",
        1591 => c"subscriber decryption internal error",
        1592 => c"stream not encrypted: the publisher declares end-to-end encryption but sends unencrypted media",
        1600 => c"subscriber media connection failed",
        1602 => c"unable to subscribe: the server refused the subscription",
        1604 => c"the stream cannot be found in the session",
        1610 => c"publisher media connection failed",
        OTC_INTERNAL_ERROR => c"internal error",
        2001 => c"unexpected message from the server: it was ignored",
        _ => c"unknown error code",
    }
}

// The mappings below name every variant of the native SDK's errors and every code of the
// protocol: a new protocol code does not compile until it is mapped here. `ClientError` is
// non-exhaustive, so it also needs a last arm for variants of later versions.

pub(crate) fn session_code(e: &ClientError) -> otc_session_error_code {
    use otc_session_error_code::*;
    match e {
        ClientError::InvalidEncryptionSecret(_) => OTC_SESSION_INVALID_ENCRYPTION_SECRET,
        ClientError::EncryptionSecretMissing => OTC_SESSION_ENCRYPTION_SECRET_MISSING,
        ClientError::UnsupportedCipherSuite(_) => OTC_SESSION_UNSUPPORTED_CIPHER_SUITE,
        ClientError::NotConnected => OTC_SESSION_NOT_CONNECTED,
        ClientError::AlreadyConnected => OTC_SESSION_ILLEGAL_STATE,
        ClientError::InvalidArgument(_) => OTC_SESSION_NULL_OR_INVALID_PARAMETER,
        ClientError::Refused { code, .. } => session_refusal(*code),
        ClientError::Protocol(_) => OTC_SESSION_UNEXPECTED_SERVER_MESSAGE,
        ClientError::Signaling(_)
        | ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_) => OTC_SESSION_CONNECTION_FAILED,
        ClientError::EncryptionSecretMismatch
        | ClientError::StreamNotEncrypted
        | ClientError::EncryptionInternalError(_)
        | ClientError::DecryptionInternalError(_)
        | ClientError::Codec(_) => OTC_SESSION_INTERNAL_ERROR,
        _ => OTC_SESSION_INTERNAL_ERROR,
    }
}

/// A refusal reported to the session: of the connection itself (handshake) or of a request
/// that is the session's (a signal).
fn session_refusal(code: ErrorCode) -> otc_session_error_code {
    use otc_session_error_code::*;
    match code {
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
        | ErrorCode::TokenLifetimeTooLong => OTC_SESSION_AUTHORIZATION_FAILURE,
        ErrorCode::UnknownSession => OTC_SESSION_INVALID_SESSION,
        ErrorCode::NotConnected => OTC_SESSION_NOT_CONNECTED,
        ErrorCode::AlreadyConnected => OTC_SESSION_ILLEGAL_STATE,
        ErrorCode::BadRequest => OTC_SESSION_NULL_OR_INVALID_PARAMETER,
        // The server speaks another version, or a resume was refused: the connection could not
        // be made as asked.
        ErrorCode::UnsupportedVersion
        | ErrorCode::HandshakeTimeout
        | ErrorCode::ResumeUnknownConnection
        | ErrorCode::ResumeBadToken
        | ErrorCode::ResumeGap
        | ErrorCode::ResumeBadSeq => OTC_SESSION_CONNECTION_FAILED,
        ErrorCode::RoleForbidden
        | ErrorCode::E2eeRequired
        | ErrorCode::E2eeCipherSuiteMismatch
        | ErrorCode::E2eeNotEnabled
        | ErrorCode::UnknownStream
        | ErrorCode::UnknownSubscription
        | ErrorCode::UnknownConnection
        | ErrorCode::NotOwner
        | ErrorCode::MediaRouterUnavailable
        | ErrorCode::MediaBadSdp
        | ErrorCode::MediaUnknownStream
        | ErrorCode::MediaUnknownTarget
        | ErrorCode::MediaRouterFailed
        | ErrorCode::SessionFull
        | ErrorCode::TooManyTokenConnections
        | ErrorCode::TooManyStreams
        | ErrorCode::TooManySessionStreams
        | ErrorCode::TooManySubscriptions
        | ErrorCode::SignalRateLimited
        | ErrorCode::Unrecognized => OTC_SESSION_CONNECTION_REFUSED,
    }
}

pub(crate) fn publisher_code(e: &ClientError) -> otc_publisher_error_code {
    use otc_publisher_error_code::*;
    match e {
        ClientError::EncryptionSecretMissing => OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING,
        ClientError::EncryptionInternalError(_) => OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR,
        ClientError::NotConnected => OTC_PUBLISHER_SESSION_DISCONNECTED,
        ClientError::Refused { code, .. } => publisher_refusal(*code),
        ClientError::InvalidArgument(_) | ClientError::UnsupportedCipherSuite(_) => OTC_PUBLISHER_UNABLE_TO_PUBLISH,
        ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_)
        | ClientError::Signaling(_) => OTC_PUBLISHER_WEBRTC_ERROR,
        ClientError::InvalidEncryptionSecret(_)
        | ClientError::EncryptionSecretMismatch
        | ClientError::StreamNotEncrypted
        | ClientError::DecryptionInternalError(_)
        | ClientError::AlreadyConnected
        | ClientError::Protocol(_)
        | ClientError::Codec(_) => OTC_PUBLISHER_INTERNAL_ERROR,
        _ => OTC_PUBLISHER_INTERNAL_ERROR,
    }
}

/// The server refused `publish` (or a request made for the publisher).
fn publisher_refusal(code: ErrorCode) -> otc_publisher_error_code {
    use otc_publisher_error_code::*;
    match code {
        ErrorCode::NotConnected => OTC_PUBLISHER_SESSION_DISCONNECTED,
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
        | ErrorCode::UnsupportedVersion
        | ErrorCode::HandshakeTimeout
        | ErrorCode::ResumeUnknownConnection
        | ErrorCode::ResumeBadToken
        | ErrorCode::ResumeGap
        | ErrorCode::ResumeBadSeq
        | ErrorCode::BadRequest
        | ErrorCode::AlreadyConnected
        | ErrorCode::RoleForbidden
        | ErrorCode::E2eeRequired
        | ErrorCode::E2eeCipherSuiteMismatch
        | ErrorCode::E2eeNotEnabled
        | ErrorCode::UnknownStream
        | ErrorCode::UnknownSubscription
        | ErrorCode::UnknownConnection
        | ErrorCode::NotOwner
        | ErrorCode::MediaRouterUnavailable
        | ErrorCode::MediaBadSdp
        | ErrorCode::MediaUnknownStream
        | ErrorCode::MediaUnknownTarget
        | ErrorCode::MediaRouterFailed
        | ErrorCode::SessionFull
        | ErrorCode::TooManyTokenConnections
        | ErrorCode::TooManyStreams
        | ErrorCode::TooManySessionStreams
        | ErrorCode::TooManySubscriptions
        | ErrorCode::SignalRateLimited
        | ErrorCode::Unrecognized => OTC_PUBLISHER_UNABLE_TO_PUBLISH,
    }
}

pub(crate) fn subscriber_code(e: &ClientError) -> otc_subscriber_error_code {
    use otc_subscriber_error_code::*;
    match e {
        ClientError::EncryptionSecretMissing => OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISSING,
        ClientError::EncryptionSecretMismatch => OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH,
        ClientError::StreamNotEncrypted => OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED,
        ClientError::DecryptionInternalError(_) => OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR,
        ClientError::NotConnected => OTC_SUBSCRIBER_SESSION_DISCONNECTED,
        // The native SDK refuses a stream it has not seen with InvalidArgument.
        ClientError::InvalidArgument(_) => OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM,
        ClientError::Refused { code, .. } => subscriber_refusal(*code),
        ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_)
        | ClientError::Signaling(_) => OTC_SUBSCRIBER_WEBRTC_ERROR,
        ClientError::InvalidEncryptionSecret(_)
        | ClientError::EncryptionInternalError(_)
        | ClientError::UnsupportedCipherSuite(_)
        | ClientError::AlreadyConnected
        | ClientError::Protocol(_)
        | ClientError::Codec(_) => OTC_SUBSCRIBER_INTERNAL_ERROR,
        _ => OTC_SUBSCRIBER_INTERNAL_ERROR,
    }
}

/// The server refused `subscribe`.
fn subscriber_refusal(code: ErrorCode) -> otc_subscriber_error_code {
    use otc_subscriber_error_code::*;
    match code {
        // The stream has gone (the server's or the router's view).
        ErrorCode::UnknownStream | ErrorCode::MediaUnknownStream => OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM,
        ErrorCode::NotConnected => OTC_SUBSCRIBER_SESSION_DISCONNECTED,
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
        | ErrorCode::UnsupportedVersion
        | ErrorCode::HandshakeTimeout
        | ErrorCode::ResumeUnknownConnection
        | ErrorCode::ResumeBadToken
        | ErrorCode::ResumeGap
        | ErrorCode::ResumeBadSeq
        | ErrorCode::BadRequest
        | ErrorCode::AlreadyConnected
        | ErrorCode::RoleForbidden
        | ErrorCode::E2eeRequired
        | ErrorCode::E2eeCipherSuiteMismatch
        | ErrorCode::E2eeNotEnabled
        | ErrorCode::UnknownSubscription
        | ErrorCode::UnknownConnection
        | ErrorCode::NotOwner
        | ErrorCode::MediaRouterUnavailable
        | ErrorCode::MediaBadSdp
        | ErrorCode::MediaUnknownTarget
        | ErrorCode::MediaRouterFailed
        | ErrorCode::SessionFull
        | ErrorCode::TooManyTokenConnections
        | ErrorCode::TooManyStreams
        | ErrorCode::TooManySessionStreams
        | ErrorCode::TooManySubscriptions
        | ErrorCode::SignalRateLimited
        | ErrorCode::Unrecognized => OTC_SUBSCRIBER_UNABLE_TO_SUBSCRIBE,
    }
}

/// Returns a human-readable description of any status or error code returned by a function or
/// reported to a callback. The string is static: never free it. Unknown codes give
/// "unknown error code".
#[unsafe(no_mangle)]
pub extern "C" fn otc_error_string(code: c_int) -> *const c_char {
    // Nothing here can panic; no guard needed.
    error_cstr(code).as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_enum_value_has_its_own_string() {
        use otc_publisher_error_code as P;
        use otc_session_error_code as S;
        use otc_subscriber_error_code as U;
        let codes = [
            S::OTC_SESSION_AUTHORIZATION_FAILURE as c_int,
            S::OTC_SESSION_INVALID_SESSION as c_int,
            S::OTC_SESSION_CONNECTION_FAILED as c_int,
            S::OTC_SESSION_NOT_CONNECTED as c_int,
            S::OTC_SESSION_NULL_OR_INVALID_PARAMETER as c_int,
            S::OTC_SESSION_ILLEGAL_STATE as c_int,
            S::OTC_SESSION_CONNECTION_REFUSED as c_int,
            S::OTC_SESSION_INVALID_ENCRYPTION_SECRET as c_int,
            S::OTC_SESSION_ENCRYPTION_SECRET_MISSING as c_int,
            S::OTC_SESSION_UNSUPPORTED_CIPHER_SUITE as c_int,
            S::OTC_SESSION_SIGNAL_DECRYPTION_FAILED as c_int,
            crate::signal::otc_signal_decryption_error::OTC_SIGNAL_ENCRYPTION_SECRET_MISMATCH as c_int,
            crate::signal::otc_signal_decryption_error::OTC_SIGNAL_REPLAYED as c_int,
            crate::signal::otc_signal_decryption_error::OTC_SIGNAL_DECRYPTION_INTERNAL_ERROR as c_int,
            S::OTC_SESSION_INTERNAL_ERROR as c_int,
            S::OTC_SESSION_UNEXPECTED_SERVER_MESSAGE as c_int,
            P::OTC_PUBLISHER_SESSION_DISCONNECTED as c_int,
            P::OTC_PUBLISHER_UNABLE_TO_PUBLISH as c_int,
            P::OTC_PUBLISHER_ENCRYPTION_SECRET_MISSING as c_int,
            P::OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR as c_int,
            P::OTC_PUBLISHER_WEBRTC_ERROR as c_int,
            P::OTC_PUBLISHER_INTERNAL_ERROR as c_int,
            U::OTC_SUBSCRIBER_SESSION_DISCONNECTED as c_int,
            U::OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISSING as c_int,
            U::OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH as c_int,
            U::OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR as c_int,
            U::OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED as c_int,
            U::OTC_SUBSCRIBER_WEBRTC_ERROR as c_int,
            U::OTC_SUBSCRIBER_UNABLE_TO_SUBSCRIBE as c_int,
            U::OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM as c_int,
            U::OTC_SUBSCRIBER_INTERNAL_ERROR as c_int,
        ];
        for c in codes {
            assert_ne!(error_cstr(c), c"unknown error code", "code {c} has no string");
        }
        assert_eq!(error_cstr(OTC_SUCCESS), c"success");
        assert_eq!(error_cstr(-7), c"unknown error code");
    }

    #[test]
    fn e2ee_errors_map_to_the_product_codes() {
        let invalid = umbra_e2ee_invalid();
        assert_eq!(session_code(&invalid), otc_session_error_code::OTC_SESSION_INVALID_ENCRYPTION_SECRET);
        assert_eq!(
            session_code(&ClientError::EncryptionSecretMissing),
            otc_session_error_code::OTC_SESSION_ENCRYPTION_SECRET_MISSING
        );
        assert_eq!(
            subscriber_code(&ClientError::EncryptionSecretMismatch),
            otc_subscriber_error_code::OTC_SUBSCRIBER_ENCRYPTION_SECRET_MISMATCH
        );
        // Its own code, never the mismatch's: the app must not tell the user to check the secret.
        assert_eq!(
            subscriber_code(&ClientError::StreamNotEncrypted),
            otc_subscriber_error_code::OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED
        );
        assert_eq!(
            subscriber_code(&ClientError::DecryptionInternalError("x".into())),
            otc_subscriber_error_code::OTC_SUBSCRIBER_DECRYPTION_INTERNAL_ERROR
        );
        assert_eq!(
            publisher_code(&ClientError::EncryptionInternalError("x".into())),
            otc_publisher_error_code::OTC_PUBLISHER_ENCRYPTION_INTERNAL_ERROR
        );
        assert_eq!(
            publisher_code(&ClientError::EncryptionSecretMissing) as c_int,
            otc_session_error_code::OTC_SESSION_ENCRYPTION_SECRET_MISSING as c_int
        );
        assert_eq!(
            session_code(&refused(ErrorCode::TokenExpired)),
            otc_session_error_code::OTC_SESSION_AUTHORIZATION_FAILURE
        );
    }

    fn refused(code: ErrorCode) -> ClientError {
        ClientError::Refused { code, message: String::new() }
    }

    #[test]
    fn protocol_codes_map_by_variant() {
        use otc_publisher_error_code as P;
        use otc_session_error_code as S;
        use otc_subscriber_error_code as U;
        for &code in ErrorCode::ALL {
            let session = session_code(&refused(code));
            if code.is_token_error() && code != ErrorCode::UnknownSession {
                assert_eq!(session, S::OTC_SESSION_AUTHORIZATION_FAILURE, "{code}");
            }
            // Whatever the code, a refused publish is reported as one (or as a disconnect).
            let publisher = publisher_code(&refused(code));
            assert!(
                matches!(publisher, P::OTC_PUBLISHER_UNABLE_TO_PUBLISH | P::OTC_PUBLISHER_SESSION_DISCONNECTED),
                "{code}: {publisher:?}"
            );
        }
        assert_eq!(session_code(&refused(ErrorCode::UnknownSession)), S::OTC_SESSION_INVALID_SESSION);
        assert_eq!(session_code(&refused(ErrorCode::Unrecognized)), S::OTC_SESSION_CONNECTION_REFUSED);
        assert_eq!(subscriber_code(&refused(ErrorCode::UnknownStream)), U::OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM);
        assert_eq!(
            subscriber_code(&refused(ErrorCode::MediaUnknownStream)),
            U::OTC_SUBSCRIBER_SERVER_CANNOT_FIND_STREAM
        );
        // A code that merely ends like one must not be taken for it (the old prefix matching).
        assert_eq!(subscriber_code(&refused(ErrorCode::MediaUnknownTarget)), U::OTC_SUBSCRIBER_UNABLE_TO_SUBSCRIBE);
        assert_eq!(publisher_code(&refused(ErrorCode::NotConnected)), P::OTC_PUBLISHER_SESSION_DISCONNECTED);
    }

    #[test]
    fn router_media_reports_map_to_the_webrtc_codes() {
        for e in [ClientError::MediaFailed("ICE timed out".into()), ClientError::MediaClosed("StreamEnded".into())] {
            assert_eq!(publisher_code(&e), otc_publisher_error_code::OTC_PUBLISHER_WEBRTC_ERROR);
            assert_eq!(subscriber_code(&e), otc_subscriber_error_code::OTC_SUBSCRIBER_WEBRTC_ERROR);
        }
        assert_eq!(
            session_code(&ClientError::Protocol("x".into())),
            otc_session_error_code::OTC_SESSION_UNEXPECTED_SERVER_MESSAGE
        );
    }

    /// The native SDK's error for an invalid secret, obtained the public way.
    fn umbra_e2ee_invalid() -> ClientError {
        let s = umbra_client::Session::new("k", "s", umbra_client::SessionConfig::default());
        s.set_encryption_secret("short").unwrap_err()
    }
}
