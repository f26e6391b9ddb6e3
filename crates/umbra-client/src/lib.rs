//! Umbra's native SDK.

pub mod media;
