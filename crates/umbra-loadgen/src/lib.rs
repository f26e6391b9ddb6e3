#![recursion_limit = "256"]
//! umbra-loadgen: one publisher and N subscribers in one process, str0m peers driven by a few
//! epoll loops, against Umbra (REST + docs/signaling.md) or Janus VideoRoom (its HTTP API).
//! See `umbra-loadgen --help` and docs/performance.md, "Router vs Janus".

pub mod frames;
pub mod http;
pub mod janus;
pub mod media;
pub mod pacer;
pub mod peer;
pub mod procstat;
pub mod run;
pub mod umbra;

/// Whether `UMBRA_LOADGEN_DEBUG` is set: then SDPs and signaling steps go to stderr.
pub fn debug_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("UMBRA_LOADGEN_DEBUG").is_some())
}

#[macro_export]
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::debug_enabled() {
            eprintln!("umbra-loadgen: {}", format!($($t)*));
        }
    };
}
