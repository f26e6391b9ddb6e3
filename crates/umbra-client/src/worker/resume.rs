//! Resuming the signaling connection after its socket dropped (signaling.md § Resuming after a
//! dropped socket), as the Web SDK does: the same server URL (behind a load balancer, a live
//! cluster node takes the new socket), `resume` with the token and the last event processed,
//! retried with backoff until the server's resume window has passed.
//!
//! Only signaling is interrupted: peer connections have sockets of their own and keep carrying
//! media meanwhile. Requests the server had not answered fail (their fate is unknown to the
//! client); the events missed are replayed after `resumed`, and any already processed are
//! skipped by `seq`.

use std::time::{Duration, Instant};

use umbra_protocol::{ClientMessage, ErrorCode, PROTOCOL_VERSION};

use super::{Pending, Worker};
use crate::error::ClientError;
use crate::session::Event;
use crate::signaling::SocketEnd;

const FIRST_DELAY: Duration = Duration::from_millis(250);
const MAX_DELAY: Duration = Duration::from_secs(4);

/// What `welcome` gave for resuming.
pub(super) struct Credentials {
    pub(super) connection_id: String,
    pub(super) resume_token: String,
    pub(super) window: Duration,
}

/// A resume under way.
pub(super) struct Resuming {
    /// The server forgets the connection after this.
    deadline: Instant,
    next_attempt: Instant,
    delay: Duration,
    /// The latest attempt's `resume` went out on the current socket and awaits `resumed`.
    sent: bool,
}

impl Worker {
    /// The socket ended: resume if the server allows it and the connection was ever made,
    /// otherwise end the session.
    pub(super) fn socket_ended(&mut self, end: SocketEnd, now: Instant) {
        if !end.resumable || self.credentials.is_none() || self.done {
            self.end_reason.get_or_insert(end.message);
            self.done = true;
            return;
        }
        match &mut self.resuming {
            // An attempt's socket dropped before `resumed`: the next one after a pause.
            Some(r) => {
                tracing::debug!("resume attempt failed: {}", end.message);
                r.sent = false;
            }
            None => {
                tracing::info!("signaling socket ended ({}); resuming", end.message);
                let window = self.credentials.as_ref().map_or(Duration::ZERO, |c| c.window);
                self.resuming =
                    Some(Resuming { deadline: now + window, next_attempt: now, delay: FIRST_DELAY, sent: false });
                self.emit(Event::Reconnecting);
                self.fail_pending();
            }
        }
    }

    /// Requests in flight when the socket dropped: whether the server carried them out is
    /// unknown, so each fails as its own error would.
    fn fail_pending(&mut self) {
        let ids: Vec<u64> = self.pending.keys().copied().collect();
        for id in ids {
            // A restart's new peer connection still waits for its answer: it is offered again
            // after the resume (`restart::retry_restarts`).
            if let Some(Pending::Renegotiate(_, target)) = self.pending.get(&id) {
                self.restarts_waiting.push(target.clone());
                self.pending.remove(&id);
                continue;
            }
            self.request_error(Some(umbra_protocol::RequestId::Number(id)), ClientError::ConnectionInterrupted);
        }
    }

    /// Makes the next attempt when it is due; gives up when the window has passed.
    pub(super) fn drive_resume(&mut self, now: Instant) {
        let Some(r) = &mut self.resuming else { return };
        if now >= r.deadline {
            self.end_reason = Some("the connection to the session was lost and could not be resumed in time".into());
            self.done = true;
            return;
        }
        if r.sent || now < r.next_attempt {
            return;
        }
        r.next_attempt = now + r.delay;
        r.delay = (r.delay * 2).min(MAX_DELAY);
        let Some(c) = &self.credentials else { return };
        let msg = ClientMessage::Resume {
            v: PROTOCOL_VERSION,
            session_id: self.session_id.clone(),
            connection_id: c.connection_id.clone(),
            resume_token: c.resume_token.clone(),
            last_seq: self.last_seq,
        };
        match self.sig.reopen(&msg) {
            Ok(()) => {
                if let Some(r) = &mut self.resuming {
                    r.sent = true;
                }
                self.last_received = now;
            }
            Err(e) => tracing::debug!("resume attempt: {e}"),
        }
    }

    /// `resumed`: the connection is whole again.
    pub(super) fn resumed(&mut self, now: Instant) {
        if self.resuming.take().is_none() {
            return self.protocol_error("resumed, but this client did not ask to resume".into());
        }
        self.last_ping = now;
        tracing::info!("signaling resumed after event {}", self.last_seq);
        self.emit(Event::Reconnected);
        self.retry_restarts();
    }

    /// An error without a request id while resuming: the server refused the resume. Only a
    /// handshake it did not see in time is worth repeating; the others (`resume_gap`,
    /// `resume_unknown_connection`, …) say the connection is gone. True when handled here.
    pub(super) fn resume_refused(&mut self, code: ErrorCode, message: &str) -> bool {
        let Some(r) = &mut self.resuming else { return false };
        if code == ErrorCode::HandshakeTimeout {
            r.sent = false;
            return true;
        }
        self.end_reason = Some(format!("the connection could not be resumed: {code}: {message}"));
        self.done = true;
        true
    }

    /// Where the resume's next step is due, for the thread's sleep.
    pub(super) fn resume_wakeup(&self) -> Option<Instant> {
        self.resuming.as_ref().map(|r| if r.sent { r.deadline } else { r.next_attempt.min(r.deadline) })
    }

    /// A socket from which nothing arrived for the heartbeat timeout is dropped (the peer may be
    /// gone without a FIN: a dead host, a cut link).
    pub(super) fn silent_for_too_long(&self, now: Instant) -> bool {
        let Some(w) = &self.welcome else { return false };
        self.sig.is_open() && now.duration_since(self.last_received) >= w.heartbeat_timeout
    }
}
