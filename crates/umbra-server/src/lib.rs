//! Umbra's server: the OpenTok-compatible REST API, projects with the E2EE add-on, client tokens,
//! sessions and WebSocket signaling. The binary `umbra` (src/main.rs) is a thin CLI over this
//! library; the media router plugs in through [`media_router::MediaRouter`].

#![forbid(unsafe_code)]

pub mod api;
pub mod b64;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod http;
pub mod ids;
pub mod jwt;
pub mod media_router;
pub mod metrics;
pub mod model;
pub mod project_auth;
pub mod router_host;
pub mod server;
pub mod signaling;
pub mod state;
pub mod store;
pub mod token;
