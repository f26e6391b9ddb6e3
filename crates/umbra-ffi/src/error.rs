//! Error codes (the C SDK's values and meanings, `crates/umbra-capi/src/errors.rs`) and the
//! error every fallible exported function returns.
//!
//! The C SDK has three enums that share values; Kotlin and Swift get one enum, and the object a
//! code is reported to (session, publisher, subscriber) says which family it belongs to. The
//! mapping from the native SDK's errors is written per family, exactly as the C SDK's, so an app
//! ported between the two sees the same code for the same event.

use umbra_client::{ClientError, ErrorCode as ProtocolCode};

/// Every code a call or a listener can report, with the C SDK's numeric value
/// ([`error_code_value`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum ErrorCode {
    /// The server refused the token (1004).
    AuthorizationFailure,
    /// The session does not exist on the server (1005).
    InvalidSession,
    /// The server could not be reached, or the signaling connection failed (1006).
    ConnectionFailed,
    /// The call needs a connected session (1010).
    NotConnected,
    /// An argument is invalid: a bad URL or address, a frame of the wrong size (1011).
    InvalidParameter,
    /// Not allowed now: connecting twice, publishing a publisher that is already published (1015).
    IllegalState,
    /// The server refused a request of this client (1023).
    ConnectionRefused,
    /// The server refused the stream (1500).
    UnableToPublish,
    /// `set_encryption_secret` was given a secret that is not 8 to 256 characters (1570).
    InvalidEncryptionSecret,
    /// Connecting, publishing or subscribing in an end-to-end encrypted session without a
    /// secret (1571).
    EncryptionSecretMissing,
    /// The session's cipher suite is not implemented here (1572).
    UnsupportedCipherSuite,
    /// Encrypting a frame failed (1580).
    EncryptionInternalError,
    /// The stream does not decrypt with this secret: the publisher uses another (1590).
    EncryptionSecretMismatch,
    /// Decrypting failed for another reason than a different secret (1591).
    DecryptionInternalError,
    /// The publisher declares end-to-end encryption but sends plain media (1592).
    StreamNotEncrypted,
    /// A subscriber's media connection failed or the router closed it (1600).
    SubscriberWebRtcError,
    /// The server refused the subscription (1602).
    UnableToSubscribe,
    /// The stream is not (or no longer) in the session (1604).
    StreamNotFound,
    /// A publisher's media connection failed (1610).
    PublisherWebRtcError,
    /// An unexpected failure inside the SDK (2000).
    InternalError,
    /// The server sent a message this SDK cannot use; it was ignored (2001).
    UnexpectedServerMessage,
}

impl ErrorCode {
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::AuthorizationFailure,
        ErrorCode::InvalidSession,
        ErrorCode::ConnectionFailed,
        ErrorCode::NotConnected,
        ErrorCode::InvalidParameter,
        ErrorCode::IllegalState,
        ErrorCode::ConnectionRefused,
        ErrorCode::UnableToPublish,
        ErrorCode::InvalidEncryptionSecret,
        ErrorCode::EncryptionSecretMissing,
        ErrorCode::UnsupportedCipherSuite,
        ErrorCode::EncryptionInternalError,
        ErrorCode::EncryptionSecretMismatch,
        ErrorCode::DecryptionInternalError,
        ErrorCode::StreamNotEncrypted,
        ErrorCode::SubscriberWebRtcError,
        ErrorCode::UnableToSubscribe,
        ErrorCode::StreamNotFound,
        ErrorCode::PublisherWebRtcError,
        ErrorCode::InternalError,
        ErrorCode::UnexpectedServerMessage,
    ];

    pub fn value(self) -> i32 {
        match self {
            ErrorCode::AuthorizationFailure => 1004,
            ErrorCode::InvalidSession => 1005,
            ErrorCode::ConnectionFailed => 1006,
            ErrorCode::NotConnected => 1010,
            ErrorCode::InvalidParameter => 1011,
            ErrorCode::IllegalState => 1015,
            ErrorCode::ConnectionRefused => 1023,
            ErrorCode::UnableToPublish => 1500,
            ErrorCode::InvalidEncryptionSecret => 1570,
            ErrorCode::EncryptionSecretMissing => 1571,
            ErrorCode::UnsupportedCipherSuite => 1572,
            ErrorCode::EncryptionInternalError => 1580,
            ErrorCode::EncryptionSecretMismatch => 1590,
            ErrorCode::DecryptionInternalError => 1591,
            ErrorCode::StreamNotEncrypted => 1592,
            ErrorCode::SubscriberWebRtcError => 1600,
            ErrorCode::UnableToSubscribe => 1602,
            ErrorCode::StreamNotFound => 1604,
            ErrorCode::PublisherWebRtcError => 1610,
            ErrorCode::InternalError => 2000,
            ErrorCode::UnexpectedServerMessage => 2001,
        }
    }
}

/// The C SDK's numeric value of a code (what `otc_error_string` takes).
#[uniffi::export]
pub fn error_code_value(code: ErrorCode) -> i32 {
    code.value()
}

/// A code reported to a listener, with the native SDK's description of what happened.
#[derive(Debug, Clone, PartialEq, uniffi::Record)]
pub struct ErrorInfo {
    pub code: ErrorCode,
    pub message: String,
}

/// What a fallible call returns. One variant per code a call can return, so Kotlin and Swift
/// callers match on the exception's type; the exception's message is the text below with the
/// native SDK's description (flat: Kotlin's `Exception.message` carries it, no field clashes).
#[derive(Debug, Clone, PartialEq, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum UmbraError {
    #[error("invalid encryption secret: {message}")]
    InvalidEncryptionSecret { message: String },
    #[error("encryption secret missing: {message}")]
    EncryptionSecretMissing { message: String },
    #[error("not connected: {message}")]
    NotConnected { message: String },
    #[error("illegal state: {message}")]
    IllegalState { message: String },
    #[error("invalid parameter: {message}")]
    InvalidParameter { message: String },
    #[error("stream not found: {message}")]
    StreamNotFound { message: String },
    #[error("connection failed: {message}")]
    ConnectionFailed { message: String },
    #[error("unable to publish: {message}")]
    UnableToPublish { message: String },
    /// A failure inside the SDK or in an application callback it called (a capturer that threw).
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl UmbraError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        UmbraError::InvalidParameter { message: message.into() }
    }

    pub(crate) fn illegal(message: impl Into<String>) -> Self {
        UmbraError::IllegalState { message: message.into() }
    }

    /// The code of this error, as the C SDK's functions would return it.
    pub fn code(&self) -> ErrorCode {
        match self {
            UmbraError::InvalidEncryptionSecret { .. } => ErrorCode::InvalidEncryptionSecret,
            UmbraError::EncryptionSecretMissing { .. } => ErrorCode::EncryptionSecretMissing,
            UmbraError::NotConnected { .. } => ErrorCode::NotConnected,
            UmbraError::IllegalState { .. } => ErrorCode::IllegalState,
            UmbraError::InvalidParameter { .. } => ErrorCode::InvalidParameter,
            UmbraError::StreamNotFound { .. } => ErrorCode::StreamNotFound,
            UmbraError::ConnectionFailed { .. } => ErrorCode::ConnectionFailed,
            UmbraError::UnableToPublish { .. } => ErrorCode::UnableToPublish,
            UmbraError::Internal { .. } => ErrorCode::InternalError,
        }
    }

    /// A native error returned by a call, in the family of the object the call was about.
    pub(crate) fn from_client(e: &ClientError, family: Family) -> Self {
        let message = e.to_string();
        match family.code(e) {
            ErrorCode::InvalidEncryptionSecret => UmbraError::InvalidEncryptionSecret { message },
            ErrorCode::EncryptionSecretMissing => UmbraError::EncryptionSecretMissing { message },
            ErrorCode::NotConnected => UmbraError::NotConnected { message },
            ErrorCode::IllegalState => UmbraError::IllegalState { message },
            ErrorCode::InvalidParameter => UmbraError::InvalidParameter { message },
            ErrorCode::StreamNotFound => UmbraError::StreamNotFound { message },
            ErrorCode::ConnectionFailed => UmbraError::ConnectionFailed { message },
            ErrorCode::UnableToPublish => UmbraError::UnableToPublish { message },
            _ => UmbraError::Internal { message },
        }
    }
}

/// Which object an error is reported to: the same native error means different things to a
/// session, a publisher and a subscriber (the C SDK's three enums).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Session,
    Publisher,
    Subscriber,
}

impl Family {
    pub(crate) fn code(self, e: &ClientError) -> ErrorCode {
        match self {
            Family::Session => session_code(e),
            Family::Publisher => publisher_code(e),
            Family::Subscriber => subscriber_code(e),
        }
    }

    pub(crate) fn info(self, e: &ClientError) -> ErrorInfo {
        ErrorInfo { code: self.code(e), message: e.to_string() }
    }
}

// Every variant is named (ClientError is non-exhaustive, so a last arm catches later ones) and
// every protocol code too: a new protocol code does not compile until it is mapped here.

fn session_code(e: &ClientError) -> ErrorCode {
    match e {
        ClientError::InvalidEncryptionSecret(_) => ErrorCode::InvalidEncryptionSecret,
        ClientError::EncryptionSecretMissing => ErrorCode::EncryptionSecretMissing,
        ClientError::UnsupportedCipherSuite(_) => ErrorCode::UnsupportedCipherSuite,
        ClientError::NotConnected => ErrorCode::NotConnected,
        ClientError::AlreadyConnected => ErrorCode::IllegalState,
        ClientError::InvalidArgument(_) => ErrorCode::InvalidParameter,
        ClientError::Refused { code, .. } => session_refusal(*code),
        ClientError::Protocol(_) => ErrorCode::UnexpectedServerMessage,
        ClientError::Signaling(_)
        | ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_) => ErrorCode::ConnectionFailed,
        ClientError::EncryptionSecretMismatch
        | ClientError::StreamNotEncrypted
        | ClientError::EncryptionInternalError(_)
        | ClientError::DecryptionInternalError(_)
        | ClientError::Codec(_) => ErrorCode::InternalError,
        _ => ErrorCode::InternalError,
    }
}

fn session_refusal(code: ProtocolCode) -> ErrorCode {
    use ProtocolCode as P;
    match code {
        P::TokenMissing
        | P::TokenUnknownFormat
        | P::TokenMalformed
        | P::TokenUnsupportedAlgorithm
        | P::TokenUnknownProject
        | P::TokenForged
        | P::TokenExpired
        | P::TokenMissingExpiry
        | P::TokenWrongScope
        | P::TokenInvalidRole
        | P::TokenMissingSession
        | P::TokenWrongSession
        | P::TokenWrongProject
        | P::TokenConnectionDataTooLong
        | P::TokenLifetimeTooLong => ErrorCode::AuthorizationFailure,
        P::UnknownSession => ErrorCode::InvalidSession,
        P::NotConnected => ErrorCode::NotConnected,
        P::AlreadyConnected => ErrorCode::IllegalState,
        P::BadRequest => ErrorCode::InvalidParameter,
        // The connection could not be made as asked (another protocol version, a refused resume).
        P::UnsupportedVersion
        | P::HandshakeTimeout
        | P::ResumeUnknownConnection
        | P::ResumeBadToken
        | P::ResumeGap
        | P::ResumeBadSeq => ErrorCode::ConnectionFailed,
        P::RoleForbidden
        | P::E2eeRequired
        | P::E2eeCipherSuiteMismatch
        | P::E2eeNotEnabled
        | P::UnknownStream
        | P::UnknownSubscription
        | P::UnknownConnection
        | P::NotOwner
        | P::MediaRouterUnavailable
        | P::MediaBadSdp
        | P::MediaUnknownStream
        | P::MediaUnknownTarget
        | P::MediaRouterFailed
        | P::SessionFull
        | P::TooManyTokenConnections
        | P::TooManyStreams
        | P::TooManySessionStreams
        | P::TooManySubscriptions
        | P::SignalRateLimited
        | P::Unrecognized => ErrorCode::ConnectionRefused,
    }
}

fn publisher_code(e: &ClientError) -> ErrorCode {
    match e {
        ClientError::EncryptionSecretMissing => ErrorCode::EncryptionSecretMissing,
        ClientError::EncryptionInternalError(_) => ErrorCode::EncryptionInternalError,
        ClientError::NotConnected => ErrorCode::NotConnected,
        ClientError::Refused { code, .. } => publisher_refusal(*code),
        ClientError::InvalidArgument(_) | ClientError::UnsupportedCipherSuite(_) => ErrorCode::UnableToPublish,
        ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_)
        | ClientError::Signaling(_) => ErrorCode::PublisherWebRtcError,
        ClientError::InvalidEncryptionSecret(_)
        | ClientError::EncryptionSecretMismatch
        | ClientError::StreamNotEncrypted
        | ClientError::DecryptionInternalError(_)
        | ClientError::AlreadyConnected
        | ClientError::Protocol(_)
        | ClientError::Codec(_) => ErrorCode::InternalError,
        _ => ErrorCode::InternalError,
    }
}

fn publisher_refusal(code: ProtocolCode) -> ErrorCode {
    // Whatever the server's reason, a refused publish is one; only "not connected" says more.
    match code {
        ProtocolCode::NotConnected => ErrorCode::NotConnected,
        _ => ErrorCode::UnableToPublish,
    }
}

fn subscriber_code(e: &ClientError) -> ErrorCode {
    match e {
        ClientError::EncryptionSecretMissing => ErrorCode::EncryptionSecretMissing,
        ClientError::EncryptionSecretMismatch => ErrorCode::EncryptionSecretMismatch,
        ClientError::StreamNotEncrypted => ErrorCode::StreamNotEncrypted,
        ClientError::DecryptionInternalError(_) => ErrorCode::DecryptionInternalError,
        ClientError::NotConnected => ErrorCode::NotConnected,
        // The native SDK refuses a stream it has not seen with InvalidArgument.
        ClientError::InvalidArgument(_) => ErrorCode::StreamNotFound,
        ClientError::Refused { code, .. } => subscriber_refusal(*code),
        ClientError::Media(_)
        | ClientError::MediaFailed(_)
        | ClientError::MediaClosed(_)
        | ClientError::Signaling(_) => ErrorCode::SubscriberWebRtcError,
        ClientError::InvalidEncryptionSecret(_)
        | ClientError::EncryptionInternalError(_)
        | ClientError::UnsupportedCipherSuite(_)
        | ClientError::AlreadyConnected
        | ClientError::Protocol(_)
        | ClientError::Codec(_) => ErrorCode::InternalError,
        _ => ErrorCode::InternalError,
    }
}

fn subscriber_refusal(code: ProtocolCode) -> ErrorCode {
    match code {
        // The stream has gone (the server's or the router's view).
        ProtocolCode::UnknownStream | ProtocolCode::MediaUnknownStream => ErrorCode::StreamNotFound,
        ProtocolCode::NotConnected => ErrorCode::NotConnected,
        _ => ErrorCode::UnableToSubscribe,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(code: ProtocolCode) -> ClientError {
        ClientError::Refused { code, message: String::new() }
    }

    #[test]
    fn values_are_the_c_sdks_and_each_is_named_there() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.value()), "{c:?} shares a value");
            let text = unsafe { std::ffi::CStr::from_ptr(umbra::otc_error_string(c.value())) };
            assert_ne!(text.to_str().unwrap(), "unknown error code", "{c:?} = {} is not a C SDK code", c.value());
        }
    }

    #[test]
    fn e2ee_errors_map_to_the_product_codes() {
        let invalid =
            umbra_client::Session::new("k", "s", Default::default()).set_encryption_secret("short").unwrap_err();
        assert_eq!(Family::Session.code(&invalid), ErrorCode::InvalidEncryptionSecret);
        assert_eq!(UmbraError::from_client(&invalid, Family::Session).code(), ErrorCode::InvalidEncryptionSecret);
        let missing = ClientError::EncryptionSecretMissing;
        for f in [Family::Session, Family::Publisher, Family::Subscriber] {
            assert_eq!(f.code(&missing), ErrorCode::EncryptionSecretMissing);
        }
        assert_eq!(
            Family::Subscriber.code(&ClientError::EncryptionSecretMismatch),
            ErrorCode::EncryptionSecretMismatch
        );
        assert_eq!(Family::Subscriber.code(&ClientError::StreamNotEncrypted), ErrorCode::StreamNotEncrypted);
        assert_eq!(
            Family::Subscriber.code(&ClientError::DecryptionInternalError("x".into())),
            ErrorCode::DecryptionInternalError
        );
        assert_eq!(
            Family::Publisher.code(&ClientError::EncryptionInternalError("x".into())),
            ErrorCode::EncryptionInternalError
        );
    }

    #[test]
    fn protocol_refusals_map_by_family() {
        for &code in ProtocolCode::ALL {
            if code.is_token_error() && code != ProtocolCode::UnknownSession {
                assert_eq!(Family::Session.code(&refused(code)), ErrorCode::AuthorizationFailure, "{code}");
            }
            assert!(matches!(
                Family::Publisher.code(&refused(code)),
                ErrorCode::UnableToPublish | ErrorCode::NotConnected
            ));
        }
        assert_eq!(Family::Session.code(&refused(ProtocolCode::UnknownSession)), ErrorCode::InvalidSession);
        assert_eq!(Family::Subscriber.code(&refused(ProtocolCode::MediaUnknownStream)), ErrorCode::StreamNotFound);
        assert_eq!(Family::Subscriber.code(&refused(ProtocolCode::MediaUnknownTarget)), ErrorCode::UnableToSubscribe);
        assert_eq!(Family::Session.code(&ClientError::Protocol("x".into())), ErrorCode::UnexpectedServerMessage);
    }
}
