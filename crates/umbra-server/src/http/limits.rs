//! Timeouts and caps of the HTTP layer.

use std::time::Duration;

pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time a connection gets to send a complete request header, counted from when it opens or
    /// from the end of its previous response (so it also bounds idle keep-alive connections).
    pub header_read_timeout: Duration,
    /// Time from a complete request header to the response head, reading the body included.
    /// WebSocket upgrades are exempt once switched.
    pub request_timeout: Duration,
    /// Open connections (WebSockets included) beyond which idle ones are shed. `None`: derived
    /// from the open-file limit, see [`super::fd_limit::default_max_connections`].
    pub max_connections: Option<usize>,
    /// Extra `Host` names accepted on browser-facing routes (`*`: any), see [`super::host`].
    pub allowed_hosts: Vec<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_connections: None,
            allowed_hosts: Vec::new(),
        }
    }
}
