//! Errors returned across the router's API. Every failure a caller can cause (bad SDP, unknown
//! ids, a router that has stopped) has its own variant so the server can map it to a precise
//! signaling error without parsing strings.

use std::io;
use std::net::SocketAddr;

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// The configuration cannot work (no bind address, an unusable advertised address, ...).
    #[error("invalid router configuration: {0}")]
    Config(String),
    /// Binding or configuring a UDP socket failed.
    #[error("cannot bind UDP socket {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    /// Setting up the router thread or its waker failed.
    #[error("cannot start the router: {0}")]
    Start(#[source] io::Error),
    /// The SDP offer could not be parsed.
    #[error("the SDP offer does not parse: {0}")]
    BadSdp(String),
    /// The SDP offer parsed but str0m refused it (e.g. no common codec, bad fingerprint).
    #[error("the SDP offer was refused: {0}")]
    OfferRefused(String),
    /// The offer parsed and was accepted but carries nothing this role can use, e.g. a
    /// publisher offer without any sending audio/video section.
    #[error("the SDP offer has no usable media: {0}")]
    NoUsableMedia(String),
    /// A stream id is already published in this session.
    #[error("stream {stream_id} is already published in session {session_id}")]
    StreamExists { session_id: String, stream_id: String },
    /// A subscription id is already in use in this session.
    #[error("subscription {subscription_id} already exists in session {session_id}")]
    SubscriptionExists { session_id: String, subscription_id: String },
    /// No such published stream.
    #[error("no stream {stream_id} in session {session_id}")]
    UnknownStream { session_id: String, stream_id: String },
    /// No such subscription.
    #[error("no subscription {subscription_id} in session {session_id}")]
    UnknownSubscription { session_id: String, subscription_id: String },
    /// No peer connection of this connection id.
    #[error("no peer connection of connection {connection_id} in session {session_id}")]
    UnknownConnection { session_id: String, connection_id: String },
    /// An ICE candidate line that does not parse.
    #[error("the ICE candidate does not parse: {0}")]
    BadCandidate(String),
    /// The operating system's random number generator failed, so no unguessable ICE
    /// credentials could be made for a new connection (the offer is refused rather than
    /// answered with weak ones).
    #[error("the OS random number generator failed: {0}")]
    Entropy(#[source] getrandom::Error),
    /// The media stack failed on this request (a bug, contained: the router goes on).
    #[error("internal error in the media router: {0}")]
    Internal(String),
    /// The router thread has stopped (after `shutdown` or a fatal socket error).
    #[error("the media router has stopped")]
    Stopped,
}

pub type Result<T> = std::result::Result<T, RouterError>;
