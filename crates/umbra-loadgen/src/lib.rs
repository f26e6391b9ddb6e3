//! umbra-loadgen: one publisher and N subscribers in one process, str0m peers driven by a few
//! poll(2) loops, against Umbra (REST + docs/signaling.md) or Janus VideoRoom (its HTTP API).
//! See `umbra-loadgen --help` and docs/performance.md, "Router vs Janus".

pub mod frames;
pub mod http;
pub mod janus;
pub mod media;
pub mod peer;
pub mod procstat;
pub mod run;
pub mod umbra;
