//! One WebRTC peer connection (str0m) with its own UDP socket, driven by the session thread.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid, Rid, Simulcast, SimulcastLayer};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use crate::error::ClientError;
use crate::media::VideoCodec;

fn media_err(e: impl std::fmt::Display) -> ClientError {
    ClientError::Media(e.to_string())
}

pub(crate) struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    local: SocketAddr,
    deadline: Instant,
    pending: Option<SdpPendingOffer>,
    pub(crate) video_mid: Option<Mid>,
    pub(crate) audio_mid: Option<Mid>,
    pub(crate) connected: bool,
    buf: Vec<u8>,
}

impl Peer {
    /// A connection that negotiates Opus and the given video codecs: a publisher's one codec,
    /// or every codec a subscriber decodes.
    pub(crate) fn new(bind_ip: IpAddr, video: &[VideoCodec]) -> Result<Self, ClientError> {
        let socket = UdpSocket::bind(SocketAddr::new(bind_ip, 0)).map_err(media_err)?;
        socket.set_nonblocking(true).map_err(media_err)?;
        let local = socket.local_addr().map_err(media_err)?;
        let now = Instant::now();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(video.contains(&VideoCodec::Vp8))
            .enable_vp9(video.contains(&VideoCodec::Vp9))
            .enable_h264(video.contains(&VideoCodec::H264))
            .enable_bwe(None)
            .set_stats_interval(None)
            .build(now);
        let candidate = Candidate::host(local, "udp").map_err(media_err)?;
        rtc.add_local_candidate(candidate);
        Ok(Self {
            rtc,
            socket,
            local,
            deadline: now,
            pending: None,
            video_mid: None,
            audio_mid: None,
            connected: false,
            buf: vec![0; 2000],
        })
    }

    /// An offer to send (publisher) or receive (subscriber) audio and video. A publisher's
    /// `rids` (smallest first) make its video simulcast: one RTP stream per rid, listed in
    /// that order in `a=simulcast:send`.
    pub(crate) fn create_offer(
        &mut self,
        audio: bool,
        video: bool,
        send: bool,
        rids: &[Rid],
    ) -> Result<String, ClientError> {
        let dir = if send { Direction::SendOnly } else { Direction::RecvOnly };
        let simulcast = (send && !rids.is_empty()).then(|| {
            let mut s = Simulcast::new();
            for rid in rids {
                s.add_send_layer(SimulcastLayer::new(rid));
            }
            s
        });
        let mut api = self.rtc.sdp_api();
        if audio {
            self.audio_mid = Some(api.add_media(MediaKind::Audio, dir, None, None, None));
        }
        if video {
            self.video_mid = Some(api.add_media(MediaKind::Video, dir, None, None, simulcast));
        }
        let (offer, pending) = api.apply().ok_or_else(|| ClientError::Media("nothing to negotiate".into()))?;
        self.pending = Some(pending);
        Ok(offer.to_sdp_string())
    }

    pub(crate) fn accept_answer(&mut self, sdp: &str) -> Result<(), ClientError> {
        let answer =
            SdpAnswer::from_sdp_string(sdp).map_err(|e| ClientError::Media(format!("invalid SDP answer: {e}")))?;
        let pending = self.pending.take().ok_or_else(|| ClientError::Media("no offer is pending".into()))?;
        self.rtc.sdp_api().accept_answer(pending, answer).map_err(media_err)
    }

    /// Answers a remote offer (relayed sessions: a subscriber's recvonly offer to a publisher).
    pub(crate) fn accept_offer(&mut self, sdp: &str) -> Result<String, ClientError> {
        let offer =
            SdpOffer::from_sdp_string(sdp).map_err(|e| ClientError::Media(format!("invalid SDP offer: {e}")))?;
        let answer = self.rtc.sdp_api().accept_offer(offer).map_err(media_err)?;
        Ok(answer.to_sdp_string())
    }

    /// A candidate the other end trickled (relayed sessions). An empty one marks the end of its
    /// candidates and needs nothing; one str0m cannot use (e.g. an mDNS `.local` address) is
    /// refused with an error the caller may ignore: ICE still learns peer-reflexive addresses
    /// from the checks that arrive.
    pub(crate) fn add_remote_candidate(&mut self, candidate: &str) -> Result<(), ClientError> {
        let line = candidate.trim();
        if line.is_empty() {
            return Ok(());
        }
        let line = line.strip_prefix("a=").unwrap_or(line);
        let c = Candidate::from_sdp_string(line)
            .map_err(|e| ClientError::Media(format!("remote candidate {line:?}: {e}")))?;
        self.rtc.add_remote_candidate(c);
        Ok(())
    }

    /// Runs the connection: feeds received datagrams and due timeouts, sends what it emits, and
    /// returns its events. Returns when nothing more is to be done now.
    pub(crate) fn drive(&mut self, now: Instant, events: &mut Vec<Event>) -> Result<(), ClientError> {
        loop {
            match self.socket.recv_from(&mut self.buf) {
                Ok((n, source)) => {
                    if let Ok(r) = Receive::new(Protocol::Udp, source, self.local, &self.buf[..n]) {
                        self.rtc.handle_input(Input::Receive(now, r)).map_err(media_err)?;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::ConnectionRefused || e.kind() == ErrorKind::ConnectionReset => {
                    continue;
                }
                Err(e) => return Err(media_err(e)),
            }
        }
        if now >= self.deadline {
            self.rtc.handle_input(Input::Timeout(now)).map_err(media_err)?;
        }
        self.flush(events)
    }

    fn flush(&mut self, events: &mut Vec<Event>) -> Result<(), ClientError> {
        loop {
            match self.rtc.poll_output().map_err(media_err)? {
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination);
                }
                Output::Timeout(t) => {
                    self.deadline = t;
                    return Ok(());
                }
                Output::Event(e) => {
                    match &e {
                        Event::Connected => self.connected = true,
                        Event::MediaAdded(m) => match m.kind {
                            MediaKind::Audio => self.audio_mid = Some(m.mid),
                            MediaKind::Video => self.video_mid = Some(m.mid),
                        },
                        _ => {}
                    }
                    events.push(e);
                }
            }
        }
    }

    /// The UDP socket, for the session thread's poll(2).
    pub(crate) fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.socket)
    }

    pub(crate) fn deadline(&self) -> Instant {
        self.deadline
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.rtc.is_alive()
    }

    /// Sends one frame on `mid` with the payload type negotiated for `codec`: on simulcast
    /// layer `rid` if given, with an RFC 6464 audio level (-dBov, voice activity) if given.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn write(
        &mut self,
        mid: Mid,
        codec: Codec,
        now: Instant,
        time: MediaTime,
        data: Vec<u8>,
        rid: Option<Rid>,
        level: Option<(u8, bool)>,
    ) -> Result<(), ClientError> {
        let mut writer = self.rtc.writer(mid).ok_or_else(|| ClientError::Media(format!("no media {mid}")))?;
        if let Some(rid) = rid {
            writer = writer.rid(rid);
        }
        if let Some((level, voice)) = level {
            // str0m takes the level as negative decibels and writes its magnitude (RFC 6464).
            writer = writer.audio_level(-(level.min(127) as i8), voice);
        }
        // H.264 needs packetization mode 1 (FU-A): mode 0 cannot split a picture's NAL units
        // into packets, and any picture larger than one packet would be lost.
        let pt = writer
            .payload_params()
            .filter(|p| p.spec().codec == codec)
            .min_by_key(|p| codec == Codec::H264 && p.spec().format.packetization_mode != Some(1))
            .map(|p| p.pt())
            .ok_or_else(|| ClientError::Media(format!("{codec:?} was not negotiated")))?;
        // Sent on the next drive(), which also collects any events this causes.
        writer.write(pt, now, time, data).map_err(media_err)
    }

    pub(crate) fn request_key_frame(&mut self, mid: Mid) {
        if let Some(mut w) = self.rtc.writer(mid) {
            let _ = w.request_keyframe(None, KeyframeRequestKind::Pli);
        }
    }

    pub(crate) fn close(&mut self) {
        self.rtc.disconnect();
        let mut ev = Vec::new();
        let _ = self.flush(&mut ev);
    }
}
