//! Errors of the native SDK. The E2EE names are those of the product (and of umbra-e2ee).

use crate::media::vp8::CodecError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The secret breaks the rule (8 to 256 Unicode code points).
    #[error(transparent)]
    InvalidEncryptionSecret(umbra_e2ee::Error),
    /// Connecting, publishing or subscribing in an end-to-end encrypted session without a secret.
    #[error("this session is end-to-end encrypted: set an encryption secret first")]
    EncryptionSecretMissing,
    /// A subscriber cannot decrypt: the publisher uses another secret.
    #[error(
        "the stream cannot be decrypted with this encryption secret (encryption secret mismatch)"
    )]
    EncryptionSecretMismatch,
    #[error("encryption failed: {0}")]
    EncryptionInternalError(String),
    #[error("decryption failed: {0}")]
    DecryptionInternalError(String),
    /// The session uses a cipher suite this SDK does not implement.
    #[error("the session's cipher suite {0} is not supported")]
    UnsupportedCipherSuite(u16),
    #[error("not connected to a session")]
    NotConnected,
    #[error("already connected")]
    AlreadyConnected,
    #[error("the server refused the request: {code}: {message}")]
    Refused { code: String, message: String },
    #[error("signaling connection failed: {0}")]
    Signaling(String),
    #[error("media connection failed: {0}")]
    Media(String),
    #[error("codec: {0}")]
    Codec(#[from] CodecError),
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl ClientError {
    pub(crate) fn from_e2ee(e: umbra_e2ee::Error) -> Self {
        match e {
            umbra_e2ee::Error::InvalidEncryptionSecret(_) => {
                ClientError::InvalidEncryptionSecret(e)
            }
            umbra_e2ee::Error::EncryptionSecretMissing => ClientError::EncryptionSecretMissing,
            umbra_e2ee::Error::EncryptionSecretMismatch => ClientError::EncryptionSecretMismatch,
            umbra_e2ee::Error::EncryptionInternalError(f) => {
                ClientError::EncryptionInternalError(f.to_string())
            }
            umbra_e2ee::Error::UnsupportedCipherSuite(s) => ClientError::UnsupportedCipherSuite(s),
            other => ClientError::DecryptionInternalError(other.to_string()),
        }
    }
}
