//! Umbra's end-to-end encryption core.
//!
//! Every Umbra client encrypts each encoded media frame before it leaves and decrypts it before
//! decoding; the media router only ever forwards ciphertext. This crate is the one Rust
//! implementation of `docs/e2ee-protocol.md`:
//!
//! - the secret rule and the PBKDF2 step from a shared secret to a session's [`BaseKey`];
//! - SFrame (RFC 9605): [`Header`], the per-KID key schedule and AEADs ([`SframeKey`]), with
//!   every suite 1–8 and suite 6 (AES-256-CTR + HMAC-SHA-512/80) as the default;
//! - codec-aware framing ([`Codec`]) so that packetizers and the router still read what they
//!   need while it stays authenticated;
//! - senders ([`FrameEncryptor`]: random KID per secret epoch, counters that never wrap) and
//!   receivers ([`KeyRing`] + [`StreamDecryptor`]: key trial and caching, a grace period for the
//!   previous secret, replay window, and the mismatch detector with its [`E2eeEvent`]s);
//! - end-to-end encrypted signals ([`SignalSealer`], [`SignalOpener`]) under keys of their own.
//!
//! It is sans-IO: no sockets, threads or clocks. Time comes in as `Instant` arguments; the
//! only call into the OS is the random number generator for new KIDs.

#![forbid(unsafe_code)]

mod aead;
mod decryptor;
mod encryptor;
mod error;
pub mod framing;
mod header;
mod keyring;
mod mismatch;
mod protect;
mod replay;
mod secret;
mod sframe;
mod signal;
mod suite;

pub use aead::AuthFailed;
pub use decryptor::{DecryptStats, MAX_KIDS_PER_STREAM, StreamDecryptor};
pub use encryptor::FrameEncryptor;
pub use error::{Error, FrameError, Result, SecretRuleViolation};
pub use framing::Codec;
pub use header::{Header, MAX_HEADER_LEN};
pub use keyring::{DEFAULT_GRACE_PERIOD, KeyRing};
pub use mismatch::{E2eeEvent, MALFORMED_EVENT_INTERVAL, MISMATCH_MIN_DURATION, MISMATCH_MIN_FRAMES, MismatchDetector};
pub use protect::{MAX_FRAME_LEN, open_frame, seal_frame};
pub use replay::{REPLAY_WINDOW, ReplayWindow};
pub use secret::{
    BASE_KEY_LEN, BaseKey, EncryptionSecret, KDF_SALT_PREFIX, MAX_SECRET_CHARS, MIN_SECRET_CHARS, PBKDF2_ITERATIONS,
};
pub use sframe::SframeKey;
pub use signal::{
    MAX_SIGNAL_PLAINTEXT, MAX_SIGNAL_SENDERS, MAX_SIGNAL_TYPE_LEN, MAX_SIGNAL_WIRE_DATA, PlainSignal, SIGNAL_KEY_LABEL,
    SIGNAL_SUITE, SIGNAL_WIRE_TYPE, SignalError, SignalOpener, SignalSealer, signal_base_key_bytes,
};
pub use suite::{CipherSuite, NONCE_LEN, SuiteHash, SuiteKind};
