//! Errors of the native SDK. The E2EE names are those of the product (and of umbra-e2ee).

use umbra_protocol::ErrorCode;

use crate::media::CodecError;

/// Everything that can go wrong, reported by the call that failed or as an error event.
///
/// Non-exhaustive: later versions add variants (a newer protocol, new media), so a `match` on it
/// needs a catch-all arm.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The secret breaks the rule (8 to 256 Unicode code points).
    #[error(transparent)]
    InvalidEncryptionSecret(umbra_e2ee::Error),
    /// Connecting, publishing or subscribing in an end-to-end encrypted session without a secret.
    #[error("this session is end-to-end encrypted: set an encryption secret first")]
    EncryptionSecretMissing,
    /// A subscriber cannot decrypt: the publisher uses another secret.
    #[error("the stream cannot be decrypted with this encryption secret (encryption secret mismatch)")]
    EncryptionSecretMismatch,
    /// A subscriber's publisher declared end-to-end encryption but sends plain (unencrypted)
    /// media. Nothing of it is rendered. Not a mismatch: the publisher's app has to encrypt.
    #[error("the publisher declares end-to-end encryption but does not encrypt its frames (stream not encrypted)")]
    StreamNotEncrypted,
    #[error("encryption failed: {0}")]
    EncryptionInternalError(String),
    /// An encrypted signal authenticated but was received before from the same sender (a
    /// replay); it is not delivered.
    #[error("signal with KID {kid:#x} and counter {ctr} was already received (replayed signal)")]
    ReplayedSignal { kid: u64, ctr: u64 },
    #[error("decryption failed: {0}")]
    DecryptionInternalError(String),
    /// The session uses a cipher suite this SDK does not implement.
    #[error("the session's cipher suite {0} is not supported")]
    UnsupportedCipherSuite(u16),
    #[error("not connected to a session")]
    NotConnected,
    #[error("already connected")]
    AlreadyConnected,
    /// The server refused a request (or the connection itself, before `Connected`). `code` is the
    /// protocol's; a code from a newer server is [`ErrorCode::Unrecognized`] and the server's
    /// text is still in `message`.
    #[error("the server refused the request: {code}: {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("signaling connection failed: {0}")]
    Signaling(String),
    /// The signaling connection dropped and the SDK is resuming it ([`crate::Event::Reconnecting`]):
    /// a request made meanwhile is not sent, and one the server had not answered when the socket
    /// dropped fails with this (the server may or may not have carried it out).
    #[error("the connection to the session was interrupted; the SDK is reconnecting")]
    ConnectionInterrupted,
    /// The server sent a message this SDK cannot use: not a JSON object, a known type whose
    /// fields do not parse, a type this SDK does not know (from a newer server; reported once
    /// per type), or a message out of place. The message is ignored and the session stays
    /// connected.
    #[error("unexpected message from the server: {0}")]
    Protocol(String),
    /// This client's own media connection failed (socket, ICE/DTLS/SRTP as str0m reports it).
    #[error("media connection failed: {0}")]
    Media(String),
    /// The media router lost this peer connection (ICE never completed, consent expired, DTLS
    /// failed) and removed it: no media flows on it any more.
    #[error("the media router lost the media connection: {0}")]
    MediaFailed(String),
    /// The media router closed this peer connection while the SDK still used it (e.g. the
    /// stream it carried ended before the end reached this client).
    #[error("the media router closed the media connection: {0}")]
    MediaClosed(String),
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    pub(crate) fn from_e2ee(e: umbra_e2ee::Error) -> Self {
        match e {
            umbra_e2ee::Error::InvalidEncryptionSecret(_) => ClientError::InvalidEncryptionSecret(e),
            umbra_e2ee::Error::EncryptionSecretMissing => ClientError::EncryptionSecretMissing,
            umbra_e2ee::Error::EncryptionSecretMismatch => ClientError::EncryptionSecretMismatch,
            umbra_e2ee::Error::EncryptionInternalError(f) => ClientError::EncryptionInternalError(f.to_string()),
            umbra_e2ee::Error::UnsupportedCipherSuite(s) => ClientError::UnsupportedCipherSuite(s),
            other => ClientError::DecryptionInternalError(other.to_string()),
        }
    }
}
