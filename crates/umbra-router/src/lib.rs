//! Umbra's media router: a selective forwarding unit (SFU) on str0m.
//!
//! Publishers and subscribers each send an SDP offer; the router answers (ICE-lite, host
//! candidates of its advertised addresses, all of them in the answer: no trickle, and
//! `a=end-of-candidates`; ICE credentials from the OS CSPRNG). Every RTP packet a publisher sends
//! is forwarded, its payload untouched, to each subscriber of that stream (str0m's RTP mode,
//! see `engine::forward`): in end-to-end-encrypted sessions the router holds only ciphertext
//! (it has no dependency on `umbra-e2ee` and reads nothing of a payload beyond the clear codec
//! headers that tell a key frame, see `rtp::keyframe`). Datagrams go in and out in batches
//! (`batch`: recvmmsg/sendmmsg). Keyframe requests are relayed to the
//! publisher; NACK/RTX, TWCC and bandwidth estimation are str0m's.
//!
//! Threading: [`Router::start`] spawns [`RouterConfig::media_workers`] worker threads (default
//! one per core). Each owns its own UDP sockets (one per address family, on its own port: a
//! port range from the configured base port, or a free port each) and its own peer
//! connections, with its own demux; a session's connections are all placed on one worker, the
//! least loaded by connection count when the session starts, so a publisher's frames reach its
//! subscribers without leaving the thread (see `placement`). [`RouterHandle`] methods are
//! synchronous and send commands to the worker of the session; events from every worker come
//! back through [`RouterConfig::on_event`] (or a sink installed later with
//! [`RouterHandle::set_event_sink`]); stats are summed over workers and given per worker.
//!
//! Overload: no subscriber is sent media older than [`RouterConfig::max_queue_delay`], and
//! what waits for one subscriber is bounded; stale frames are dropped and a keyframe requested
//! instead (see `engine::overload`, which also says where the router used to queue).
//!
//! Hosting from an async server (tokio):
//!
//! ```text
//! let router = Router::start(RouterConfig::new(vec!["0.0.0.0:40000".parse()?, "[::]:40000".parse()?])
//!     /* .advertised = Some(vec![public_ip:0]) */)?;          // once, at start-up
//! router.set_event_sink(Some(Box::new(move |ev| { let _ = tokio_tx.send(ev); })))?;
//! // per request, off the async workers (calls block for µs–ms, never on the network):
//! let answer = tokio::task::spawn_blocking({ let r = router.clone(); move || r.publish(spec) }).await??;
//! ```
//!
//! Each client peer connection must use its own UDP port (browsers do): DTLS and SRTP carry
//! nothing that names a connection, so the router tells connections apart by remote address,
//! learned from ICE checks whose USERNAME names the router's ufrag of that connection and whose
//! MESSAGE-INTEGRITY verifies with that connection's password. Forged checks (the ufrag is in
//! clear on the wire) map nothing, displace nothing and never reach a connection's stack; see
//! the `demux` module.

mod answer;
mod batch;
mod config;
mod conn;
mod creds;
mod demux;
mod engine;
mod error;
mod events;
mod handle;
mod layers;
mod placement;
mod rtp;
mod sender;
mod sockets;
mod speaker;
mod stats;
mod stun;
mod tap;
mod timers;

pub use config::{EventSink, RouterConfig, default_media_workers};
pub use error::{Result, RouterError};
pub use events::{CloseReason, RouterEvent, RouterEventKind, Target};
pub use handle::{PublishSpec, Router, RouterHandle, SubscribeSpec, VideoWish};
pub use stats::{ConnectionRole, ConnectionStats, Counters, LatencyHistogram, RouterStats, SendCounts, WorkerStats};
pub use tap::{PacketTap, TapDirection};

/// The STUN USERNAME parsing the demux relies on, public so tools and tests can use it.
pub mod stun_username {
    pub use crate::stun::{is_stun, local_ufrag, username};
}

/// How the router makes its ICE credentials, public so tests can check them.
/// The AV1 Dependency Descriptor extension as the router negotiates and forwards it, for peers
/// built on str0m (tests, native clients) that send or read it.
pub mod dependency_descriptor {
    pub use crate::rtp::dd::{Raw, Serializer, URI};
}

pub mod ice_credentials {
    pub use crate::creds::{ALPHABET, PASSWORD_LEN, UFRAG_LEN, ice_credentials as generate};
}
