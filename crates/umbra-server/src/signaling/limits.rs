//! What one client may make the server hold or do: caps on connections, streams and
//! subscriptions, and the rate of signals. The defaults are far above what a video app does and
//! low enough that no token holder can grow a session, or the server, without bound.

use std::time::Instant;

use aws_lc_rs::digest;
use umbra_protocol::ErrorCode;

use super::error::SigError;

/// Caps and rates, each configurable (`umbra serve --help`, docs/signaling.md § Limits).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Streams one connection publishes at once.
    pub streams_per_connection: usize,
    /// Subscriptions one connection holds at once.
    pub subscriptions_per_connection: usize,
    /// Live connections (resumable ones included) made with one token.
    pub connections_per_token: usize,
    /// Connections in one session (resumable ones included).
    pub connections_per_session: usize,
    /// Streams in one session.
    pub streams_per_session: usize,
    /// Signals one connection sends, in messages.
    pub signal_count: Rate,
    /// Signals one connection sends, in bytes of `signal_type` and `data`.
    pub signal_bytes: Rate,
}

/// A token bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            streams_per_connection: 16,
            subscriptions_per_connection: 256,
            connections_per_token: 16,
            connections_per_session: 1000,
            streams_per_session: 1000,
            signal_count: Rate { per_sec: 50, burst: 100 },
            signal_bytes: Rate { per_sec: 256 * 1024, burst: 512 * 1024 },
        }
    }
}

impl Limits {
    pub fn session_full(&self) -> SigError {
        let n = self.connections_per_session;
        SigError::new(ErrorCode::SessionFull, format!("this session already has {n} connections, the server's limit"))
    }

    pub fn too_many_token_connections(&self) -> SigError {
        let n = self.connections_per_token;
        SigError::new(
            ErrorCode::TooManyTokenConnections,
            format!("this token already has {n} live connections, the server's limit; leave one or use another token"),
        )
    }

    pub fn too_many_streams(&self) -> SigError {
        let n = self.streams_per_connection;
        SigError::new(ErrorCode::TooManyStreams, format!("this connection already publishes {n} streams, the limit"))
    }

    pub fn too_many_session_streams(&self) -> SigError {
        let n = self.streams_per_session;
        SigError::new(ErrorCode::TooManySessionStreams, format!("this session already has {n} streams, the limit"))
    }

    pub fn too_many_subscriptions(&self) -> SigError {
        let n = self.subscriptions_per_connection;
        SigError::new(
            ErrorCode::TooManySubscriptions,
            format!("this connection already has {n} subscriptions, the limit"),
        )
    }
}

/// A token, as the per-token connection count knows it: a digest, so the map holds no
/// credentials and a key has a fixed size whatever the token's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// The key of a connection adopted from another node, which holds no slot on this one.
    pub fn adopted() -> Self {
        TokenKey([0; 32])
    }

    pub fn of(raw_token: &str) -> Self {
        let d = digest::digest(&digest::SHA256, raw_token.as_bytes());
        let mut key = [0; 32];
        key.copy_from_slice(d.as_ref());
        TokenKey(key)
    }
}

/// A token bucket: holds up to `burst` tokens and gains `per_sec` a second.
#[derive(Debug, Clone)]
struct Bucket {
    rate: Rate,
    tokens: f64,
}

impl Bucket {
    fn full(rate: Rate) -> Self {
        Self { rate, tokens: f64::from(rate.burst) }
    }

    fn refill(&mut self, elapsed_secs: f64) {
        self.tokens = (self.tokens + elapsed_secs * f64::from(self.rate.per_sec)).min(f64::from(self.rate.burst));
    }
}

/// One connection's allowance of signals, in count and in bytes; a signal is admitted only if
/// both buckets hold enough, and then takes from both.
#[derive(Debug, Clone)]
pub struct SignalBudget {
    count: Bucket,
    bytes: Bucket,
    last: Instant,
}

impl SignalBudget {
    pub fn new(limits: &Limits, now: Instant) -> Self {
        Self { count: Bucket::full(limits.signal_count), bytes: Bucket::full(limits.signal_bytes), last: now }
    }

    /// Takes one signal of `bytes` from the budget, or refuses it (taking nothing).
    pub fn admit(&mut self, now: Instant, bytes: usize) -> Result<(), SigError> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.count.refill(elapsed);
        self.bytes.refill(elapsed);
        let bytes = bytes as f64;
        if self.count.tokens >= 1.0 && self.bytes.tokens >= bytes {
            self.count.tokens -= 1.0;
            self.bytes.tokens -= bytes;
            return Ok(());
        }
        let (c, b) = (self.count.rate, self.bytes.rate);
        Err(SigError::new(
            ErrorCode::SignalRateLimited,
            format!(
                "signals are limited to {} a second (bursts of {}) and {} bytes a second (bursts of {}); \
                 try again later",
                c.per_sec, c.burst, b.per_sec, b.burst
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(count: Rate, bytes: Rate) -> Limits {
        Limits { signal_count: count, signal_bytes: bytes, ..Limits::default() }
    }

    #[test]
    fn a_burst_is_admitted_then_the_rate() {
        let t0 = Instant::now();
        let mut b =
            SignalBudget::new(&limits(Rate { per_sec: 10, burst: 5 }, Rate { per_sec: 1 << 20, burst: 1 << 20 }), t0);
        for _ in 0..5 {
            b.admit(t0, 10).unwrap();
        }
        assert_eq!(b.admit(t0, 10).unwrap_err().code, ErrorCode::SignalRateLimited);
        // 10 a second: one more after 100 ms, not two.
        let t1 = t0 + Duration::from_millis(100);
        b.admit(t1, 10).unwrap();
        assert!(b.admit(t1, 10).is_err());
        // Idle time refills up to the burst only.
        let t2 = t1 + Duration::from_secs(60);
        for _ in 0..5 {
            b.admit(t2, 10).unwrap();
        }
        assert!(b.admit(t2, 10).is_err());
    }

    #[test]
    fn bytes_are_limited_too_and_a_refusal_takes_nothing() {
        let t0 = Instant::now();
        let mut b =
            SignalBudget::new(&limits(Rate { per_sec: 1000, burst: 1000 }, Rate { per_sec: 1000, burst: 3000 }), t0);
        b.admit(t0, 2000).unwrap();
        let e = b.admit(t0, 2000).unwrap_err();
        assert!(e.message.contains("1000 bytes a second"), "{}", e.message);
        // The refused signal took no count: a small one still fits.
        b.admit(t0, 1000).unwrap();
        assert!(b.admit(t0, 1).is_err());
        b.admit(t0 + Duration::from_secs(2), 2000).unwrap();
    }

    #[test]
    fn a_token_key_is_a_digest_of_the_whole_token() {
        assert_eq!(TokenKey::of("T1==abc"), TokenKey::of("T1==abc"));
        assert_ne!(TokenKey::of("T1==abc"), TokenKey::of("T1==abd"));
    }
}
