//! WebSocket signaling: the protocol in `docs/signaling.md`. [`hub::Hub`] holds the live state of
//! every session (connections, streams, subscriptions) and routes events; [`socket`] runs one
//! WebSocket; [`protocol`] is the wire format.

pub mod hub;
pub mod protocol;
pub mod socket;

pub use hub::{Hub, HubConfig};
