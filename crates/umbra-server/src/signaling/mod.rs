//! WebSocket signaling, the protocol of `docs/signaling.md` as the types of `umbra-protocol`.
//!
//! - [`socket`] runs one WebSocket: the handshake, then requests in and frames out;
//! - [`hub`] holds every live session and handles joining, resuming and leaving, and the REST
//!   API's requests on live sessions; [`requests`] handles a connected client's requests, and
//!   [`media`] what the media router reports;
//! - [`room`] is one session's state and its description in pages; [`rules`] the pure rules
//!   (roles, the E2EE gate, the protocol's limits); [`limits`] the server's caps and signal rate;
//!   [`outbox`] the bounded queue from the hub to a socket; [`frame`] how messages become text,
//!   `seq` included.

pub mod error;
pub mod frame;
pub mod hub;
pub mod limits;
mod media;
pub mod outbox;
mod preference;
mod requests;
mod restart;
pub mod room;
pub mod rules;
pub mod snapshot;
pub mod socket;

pub use error::SigError;
pub use hub::{Hub, HubConfig, HubError};
pub use limits::{Limits, Rate};
pub use outbox::Bounds;
