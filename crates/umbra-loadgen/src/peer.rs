//! One str0m peer connection on its own non-blocking UDP socket.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::pacer::Pacer;

pub type Error = String;

fn err(what: &str) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| format!("{what}: {e}")
}

pub struct Peer {
    pub rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    pub deadline: Instant,
    pending: Option<SdpPendingOffer>,
    pub video_mid: Option<Mid>,
    pub audio_mid: Option<Mid>,
    pub alive: bool,
    buf: Vec<u8>,
    pacer: Option<Pacer>,
}

/// Whether an RTP datagram has the padding bit set: the bandwidth probes str0m sends (padding
/// only, on the RTX stream) carry no media and are not counted as forwarded packets.
pub fn is_padded(d: &[u8]) -> bool {
    d[0] & 0x20 != 0
}

/// Whether a datagram is RTP (RFC 7983 / RFC 5761: first byte 128–191, and not RTCP's
/// payload types 192–223 in the second byte).
pub fn is_rtp(d: &[u8]) -> bool {
    d.len() >= 12 && (128..=191).contains(&d[0]) && !(192..=223).contains(&d[1])
}

impl Peer {
    pub fn new(bind_ip: IpAddr) -> Result<Self, Error> {
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).map_err(err("bind UDP"))?;
        socket.set_nonblocking(true).map_err(err("nonblocking"))?;
        let local = socket.local_addr().map_err(err("local_addr"))?;
        let now = Instant::now();
        // No BWE on the load client: the publisher sends at its fixed rate (no pacer holding
        // frames back) and subscribers only receive (they still send TWCC feedback, NACKs and
        // receiver reports, which str0m does regardless).
        let mut rtc =
            Rtc::builder().clear_codecs().enable_opus(true, false).enable_vp8(true).set_stats_interval(None).build(now);
        let candidate = Candidate::host(local, "udp").map_err(|e| format!("candidate: {e}"))?;
        rtc.add_local_candidate(candidate);
        Ok(Self {
            rtc,
            socket,
            local,
            deadline: now,
            pending: None,
            video_mid: None,
            audio_mid: None,
            alive: true,
            buf: vec![0; 2048],
            pacer: None,
        })
    }

    /// From now on, sends at most `bps` (see [`Peer::release`]).
    pub fn pace(&mut self, bps: u64) {
        self.pacer = Some(Pacer::new(bps, Instant::now()));
    }

    /// Sends what the pacer lets go by now; returns when the next queued datagram is due
    /// (None: nothing queued, or no pacer).
    pub fn release(&mut self) -> Option<Instant> {
        self.pacer.as_mut()?.release(&self.socket, Instant::now())
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// An offer with one audio and one video section, sendonly or recvonly.
    pub fn create_offer(&mut self, send: bool) -> Result<String, Error> {
        let dir = if send { Direction::SendOnly } else { Direction::RecvOnly };
        let mut api = self.rtc.sdp_api();
        self.audio_mid = Some(api.add_media(MediaKind::Audio, dir, None, None, None));
        self.video_mid = Some(api.add_media(MediaKind::Video, dir, None, None, None));
        let (offer, pending) = api.apply().ok_or("nothing to negotiate")?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    pub fn accept_answer(&mut self, sdp: &str) -> Result<(), Error> {
        let answer = SdpAnswer::from_sdp_string(sdp).map_err(|e| format!("invalid SDP answer: {e}"))?;
        let pending = self.pending.take().ok_or("no offer is pending")?;
        self.rtc.sdp_api().accept_answer(pending, answer).map_err(|e| format!("accept answer: {e}"))
    }

    /// Answers the server's offer (Janus subscribers).
    pub fn accept_offer(&mut self, sdp: &str) -> Result<String, Error> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| format!("invalid SDP offer: {e}"))?;
        let answer = self.rtc.sdp_api().accept_offer(offer).map_err(|e| format!("accept offer: {e}"))?;
        Ok(answer.to_sdp_string())
    }

    /// Reads every waiting datagram into the connection; `on_datagram` sees each one first
    /// (to count RTP). Then handles a due timeout and flushes output, handing events to
    /// `on_event`.
    pub fn drive(
        &mut self,
        readable: bool,
        on_datagram: &mut dyn FnMut(&[u8]),
        on_event: &mut dyn FnMut(&mut Self, Event),
    ) {
        if !self.alive {
            return;
        }
        if readable {
            for _ in 0..256 {
                match self.socket.recv_from(&mut self.buf) {
                    Ok((n, source)) => {
                        on_datagram(&self.buf[..n]);
                        let now = Instant::now();
                        if let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &self.buf[..n]) {
                            // A datagram str0m rejects is not fatal for a load client.
                            let _ = self.rtc.handle_input(Input::Receive(now, r));
                            self.flush(on_event);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(_) => continue,
                }
            }
        }
        let now = Instant::now();
        if now >= self.deadline {
            if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                self.alive = false;
                return;
            }
            self.flush(on_event);
        }
    }

    pub fn flush(&mut self, on_event: &mut dyn FnMut(&mut Self, Event)) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => match &mut self.pacer {
                    Some(p) => p.push(t.contents.to_vec(), t.destination),
                    None => {
                        let r = self.socket.send_to(&t.contents, t.destination);
                        if t.contents.first().is_some_and(|b| *b < 2) {
                            crate::debug!("{} -> {} STUN {} bytes: {r:?}", self.local, t.destination, t.contents.len());
                        }
                    }
                },
                Ok(Output::Timeout(t)) => {
                    self.deadline = t;
                    return;
                }
                Ok(Output::Event(e)) => {
                    if let Event::MediaAdded(m) = &e {
                        match m.kind {
                            MediaKind::Audio => self.audio_mid = Some(m.mid),
                            MediaKind::Video => self.video_mid = Some(m.mid),
                        }
                    }
                    on_event(self, e);
                }
                Err(_) => {
                    self.alive = false;
                    return;
                }
            }
        }
    }

    pub fn close(&mut self) {
        self.rtc.disconnect();
        self.flush(&mut |_, _| {});
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes; returns the readable flags.
pub fn poll_readable(fds: &mut [libc::pollfd], timeout_ms: i32) {
    for p in fds.iter_mut() {
        p.revents = 0;
    }
    // SAFETY: `fds` is a valid, exclusively borrowed slice of pollfd for the whole call.
    unsafe {
        libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms);
    }
}

pub fn pollfd(fd: RawFd) -> libc::pollfd {
    libc::pollfd { fd, events: libc::POLLIN, revents: 0 }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rtp_is_told_from_rtcp_stun_and_dtls() {
        let mut rtp = [0u8; 20];
        rtp[0] = 0x80;
        rtp[1] = 96;
        assert!(super::is_rtp(&rtp));
        rtp[1] = 0x80 | 96; // marker bit
        assert!(super::is_rtp(&rtp));
        rtp[1] = 200; // RTCP SR
        assert!(!super::is_rtp(&rtp));
        rtp[0] = 0x00; // STUN
        rtp[1] = 0x01;
        assert!(!super::is_rtp(&rtp));
        rtp[0] = 23; // DTLS application data
        assert!(!super::is_rtp(&rtp));
    }
}
