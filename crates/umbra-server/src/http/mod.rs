//! The HTTP/1.1 connection layer under the axum router: our own accept loop instead of
//! `axum::serve`, because that one runs hyper without a timer (which silently turns hyper's
//! header-read timeout off) and has no notion of a connection budget.
//!
//! - [`limits`]: the settings (timeouts, connection cap) and their defaults.
//! - [`fd_limit`]: the default cap, derived from the process's open-file limit.
//! - [`conn_table`]: every open connection, what it is doing, and which one to shed at the cap.
//! - [`service`]: the per-connection hyper service (request timeout, busy/upgraded tracking).
//! - [`listener`]: the accept loop, its error handling and the graceful drain.
//! - [`host`]: the `Host` allow-list against DNS rebinding.

pub mod conn_table;
pub mod fd_limit;
pub mod host;
pub mod limits;
pub mod listener;
mod rate_log;
mod service;

pub use limits::HttpOptions;
