//! A publisher's pacer, as a test client needs it: browsers and the native SDK do not send a
//! frame's packets in one burst but spread them at a multiple of the target rate (libwebrtc's
//! `kDefaultPaceMultiplier` is 2.5), so a key frame reaches a server over tens of
//! milliseconds. A load client that bursts instead measures the server's worst case.
//!
//! A leaky bucket over whole datagrams: one leaves once the bits queued before it have drained
//! at the rate. No burst credit builds up while idle, so the first datagram after a pause
//! leaves at once and the rest of its frame at the rate.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// libwebrtc's pacing factor over the target bitrate.
pub const LIBWEBRTC_PACE_MULTIPLIER: f64 = 2.5;

pub struct Pacer {
    bps: u64,
    queue: VecDeque<(Vec<u8>, SocketAddr)>,
    free_at: Instant,
}

impl Pacer {
    pub fn new(bps: u64, now: Instant) -> Self {
        Self { bps: bps.max(1), queue: VecDeque::new(), free_at: now }
    }

    pub fn push(&mut self, datagram: Vec<u8>, to: SocketAddr) {
        self.queue.push_back((datagram, to));
    }

    /// Sends on `socket` what is due at `now` (a send error drops that datagram, as a network
    /// would); returns when the next queued datagram is due, None when the queue is empty.
    pub fn release(&mut self, socket: &UdpSocket, now: Instant) -> Option<Instant> {
        while let Some((d, to)) = self.queue.front() {
            if self.free_at > now {
                return Some(self.free_at);
            }
            let _ = socket.send_to(d, *to);
            let bits = d.len() as u64 * 8;
            self.free_at = self.free_at.max(now) + Duration::from_nanos(bits * 1_000_000_000 / self.bps);
            self.queue.pop_front();
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_a_burst_at_the_rate() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = rx.local_addr().unwrap();
        let t0 = Instant::now();
        // 1 Mb/s: a 1250-byte datagram is 10 ms of link.
        let mut p = Pacer::new(1_000_000, t0);
        for _ in 0..3 {
            p.push(vec![0; 1250], to);
        }
        // The first leaves at once, the second is due 10 ms later.
        assert_eq!(p.release(&tx, t0), Some(t0 + Duration::from_millis(10)));
        assert_eq!(p.release(&tx, t0 + Duration::from_millis(9)), Some(t0 + Duration::from_millis(10)));
        assert_eq!(p.release(&tx, t0 + Duration::from_millis(10)), Some(t0 + Duration::from_millis(20)));
        assert_eq!(p.release(&tx, t0 + Duration::from_millis(25)), None);
        let mut buf = [0u8; 2000];
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        for _ in 0..3 {
            assert_eq!(rx.recv(&mut buf).unwrap(), 1250);
        }
        // Idle time gives no credit: after a pause, one leaves and the next waits its 10 ms.
        let t1 = t0 + Duration::from_secs(1);
        p.push(vec![0; 1250], to);
        p.push(vec![0; 1250], to);
        assert_eq!(p.release(&tx, t1), Some(t1 + Duration::from_millis(10)));
    }
}
