//! The accept loop: admits connections within the connection cap, serves each with hyper's
//! HTTP/1 connection (with a timer, so the header-read timeout is on), survives `accept` errors,
//! and on shutdown stops accepting and lets every connection finish its request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use super::HttpOptions;
use super::conn_table::{Admission, ConnTable, CountedStream};
use super::rate_log::RateLimited;
use super::service::ConnService;

/// Pause after an `accept` failure that is about the process (out of descriptors or memory),
/// not the peer: the pending connection stays queued, and retrying at once would spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
const MAX_HEADER_BUFFER: usize = 64 * 1024;
const SHED_BACKOFF: Duration = Duration::from_millis(2);
const DRAIN_POLL: Duration = Duration::from_millis(20);
const LOG_EVERY: Duration = Duration::from_secs(10);

static CAP_LOG: RateLimited = RateLimited::new(LOG_EVERY);
static FULL_LOG: RateLimited = RateLimited::new(LOG_EVERY);
static ACCEPT_LOG: RateLimited = RateLimited::new(LOG_EVERY);

/// Serves until `shutdown` resolves, then waits for the connections to finish their requests
/// (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    opts: &HttpOptions,
    table: Arc<ConnTable>,
    shutdown: impl Future<Output = ()>,
) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout)
        .keep_alive(true)
        // hyper buffers up to ~400 KiB of header per connection by default: with every
        // connection slot held by a slow sender that would be hundreds of MB. 64 KiB is ample
        // for real headers; larger ones get 431. Both settings are needed: the buffer bound is
        // only checked while a header is incomplete, the header bound only once it is parsed.
        .max_buf_size(MAX_HEADER_BUFFER)
        .max_header_size(MAX_HEADER_BUFFER);
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a sender; when all are gone, the drain is over.
    let (live_tx, mut live_rx) = mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, _peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) if is_peer_error(&e) => continue,
                Err(e) => {
                    // Out of descriptors: closing an idle connection frees one for the queue.
                    let shed = table.shed_one();
                    if let Some(suppressed) = ACCEPT_LOG.allow() {
                        tracing::warn!(
                            error = %e, open = table.len(), shed_idle = shed, suppressed,
                            "cannot accept connections; retrying shortly (raise the open-file limit or lower max_connections)"
                        );
                    }
                    // A shed connection's descriptor is free once its task has dropped it.
                    tokio::time::sleep(if shed { SHED_BACKOFF } else { ACCEPT_BACKOFF }).await;
                    continue;
                }
            },
        };
        let slot = match table.admit() {
            Admission::Admitted { slot, shed_another } => {
                if shed_another && let Some(suppressed) = CAP_LOG.allow() {
                    tracing::warn!(
                        max_connections = table.cap(),
                        suppressed,
                        "connection limit reached: closing the longest-idle connection for each new one \
                         (raise max_connections or the open-file limit if this is legitimate load)"
                    );
                }
                slot
            }
            Admission::Full => {
                if let Some(suppressed) = FULL_LOG.allow() {
                    tracing::warn!(
                        max_connections = table.cap(),
                        suppressed,
                        "connection limit reached with every connection busy: refusing new connections"
                    );
                }
                let _ = tcp
                    .try_write(b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
                continue;
            }
        };
        // Signaling is many small messages: Nagle's algorithm would hold them back for an ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = ConnService {
            router: router.clone(),
            slot: Arc::clone(slot.slot()),
            request_timeout: opts.request_timeout,
        };
        tokio::spawn(run_connection(
            http.clone(),
            CountedStream::new(tcp, slot),
            service,
            stop_rx.clone(),
            live_tx.clone(),
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(live_tx);
    let _ = live_rx.recv().await;
    // Upgraded sockets outlive their hyper connection; the hub has told them to close, and their
    // slots go when they have (the caller's grace period bounds this).
    while !table.is_empty() {
        tokio::time::sleep(DRAIN_POLL).await;
    }
}

async fn run_connection(
    http: hyper::server::conn::http1::Builder,
    stream: CountedStream,
    service: ConnService,
    mut stop: watch::Receiver<bool>,
    _live: mpsc::Sender<()>,
) {
    let slot = Arc::clone(&service.slot);
    let conn = http.serve_connection(TokioIo::new(stream), service).with_upgrades();
    let mut conn = std::pin::pin!(conn);
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::select! {
        r = conn.as_mut() => log_end(r),
        // Dropping the connection closes the socket; only idle connections are ever shed.
        () = slot.shed_requested() => tracing::debug!("idle connection shed at the connection limit"),
        () = stopping => {
            conn.as_mut().graceful_shutdown();
            log_end(conn.await);
        }
    }
}

fn log_end(r: Result<(), hyper::Error>) {
    if let Err(e) = r {
        // Timeouts and peers that hang up are routine; nothing for the operator to do.
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

/// Errors about one connection that went away while queued, not about the listener.
fn is_peer_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock)
}
