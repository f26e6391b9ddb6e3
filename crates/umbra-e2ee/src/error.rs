//! The one error type of the crate. Variant names are the product's error names, so that every
//! SDK (native, C, web) reports the same thing for the same cause.

use crate::framing::Codec;

/// Everything that can go wrong in the E2EE core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The secret breaks the secret rule (8 to 256 Unicode scalar values).
    #[error("invalid encryption secret: {0}")]
    InvalidEncryptionSecret(SecretRuleViolation),
    /// An operation needs a secret and none is set.
    #[error("no encryption secret is set; set one before connecting, publishing or subscribing")]
    EncryptionSecretMissing,
    /// A frame did not authenticate under any secret this receiver holds: the sender most likely
    /// uses a different secret (or the frame was tampered with on the way).
    #[error("the frame does not authenticate with this encryption secret (encryption secret mismatch)")]
    EncryptionSecretMismatch,
    /// The sender could not encrypt a frame.
    #[error("encryption failed: {0}")]
    EncryptionInternalError(FrameError),
    /// The receiver could not take a frame apart (malformed, truncated) or the crypto backend
    /// failed. Not a secret mismatch.
    #[error("decryption failed: {0}")]
    DecryptionInternalError(FrameError),
    /// The frame authenticated but its counter was already seen (or is older than the replay
    /// window): a replay or a duplicate. Dropped silently by SDKs.
    #[error("frame with KID {kid:#x} and counter {ctr} was already received or is too old")]
    ReplayedFrame { kid: u64, ctr: u64 },
    /// A cipher suite this implementation does not provide.
    #[error("unsupported SFrame cipher suite {0}")]
    UnsupportedCipherSuite(u16),
}

/// Why a secret is invalid. Lengths count Unicode scalar values (code points), not bytes and
/// not UTF-16 units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SecretRuleViolation {
    #[error("it has {chars} characters; at least {min} are required", min = crate::secret::MIN_SECRET_CHARS)]
    TooShort { chars: usize },
    #[error("it has {chars} characters; at most {max} are allowed", max = crate::secret::MAX_SECRET_CHARS)]
    TooLong { chars: usize },
}

/// What exactly was wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame ends before a structure it announces.
    #[error("frame truncated: {0}")]
    Truncated(&'static str),
    /// The codec bitstream is not what the codec-aware framing expects.
    #[error("malformed {codec} frame: {reason}")]
    Malformed { codec: Codec, reason: &'static str },
    /// The frame is larger than this implementation accepts.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The SFrame header names a cipher suite or a layout we cannot read.
    #[error("invalid SFrame header: {0}")]
    BadHeader(&'static str),
    /// The crypto backend reported a failure that is not an authentication failure.
    #[error("crypto backend failure during {0}")]
    Crypto(&'static str),
    /// The operating system's random number generator failed (needed for a fresh KID).
    #[error("the system random number generator failed")]
    Randomness,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
