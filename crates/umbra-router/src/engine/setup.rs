//! Setting peer connections up from offers, and taking them down.

use super::*;
use crate::rtp::dd;
use crate::{answer, creds};
use str0m::rtp::{Extension, ExtensionMap};

/// The Dependency Descriptor's id in the router's own extension map (str0m's standard map
/// uses 1-4, 10, 11 and 13); offers bring their own ids, which str0m's answer keeps.
const DD_EXTENSION_ID: u8 = 12;

impl Engine {
    /// A connection for one offer; `bwe_initial_bps`: send-side bandwidth estimation (with
    /// str0m's pacer) on it, from this first estimate; `twcc`: transport-wide sequence numbers
    /// negotiated (see [`Engine::answer`]).
    pub(super) fn new_rtc(&mut self, bwe_initial_bps: Option<u64>, twcc: bool, now: Instant) -> Result<(Rtc, String)> {
        // From the OS CSPRNG, not str0m's `IceCreds::new()`: the password is what the demux's
        // address verification rests on (see `creds.rs`).
        let mut creds = creds::ice_credentials().map_err(RouterError::Entropy)?;
        // 16 random characters make a collision astronomically unlikely, but a collision would
        // route one client's checks to another's connection: re-draw rather than hope.
        while self.demux.has_ufrag(&creds.ufrag) {
            creds = creds::ice_credentials().map_err(RouterError::Entropy)?;
        }
        let ufrag = creds.ufrag.clone();
        // str0m's standard map (Chrome's ids), less transport-wide sequence numbers where no
        // feedback is wanted; offers bring their own ids, which str0m's answer keeps.
        let mut exts = ExtensionMap::empty();
        for (id, ext) in ExtensionMap::standard().iter() {
            if twcc || *ext != Extension::TransportSequenceNumber {
                exts.set(id, ext.clone());
            }
        }
        let mut config = Rtc::builder()
            .set_extension_map(exts)
            .set_ice_lite(true)
            .set_local_ice_credentials(creds)
            .set_dtls_cert(self.cert.clone())
            .set_crypto_provider(self.crypto.clone())
            // RTP mode: packets in (`Event::RtpPacket`) and out (`StreamTx::write_rtp`) without
            // depacketizing and repacketizing per subscriber; see `engine::forward`.
            .set_rtp_mode(true)
            // str0m's default RTX history (1000 video packets, ~4 s at 2.5 Mbps) would be the
            // bulk of a subscriber's memory; see `RouterConfig::rtx_history_packets`.
            .set_send_buffer_video(self.settings.rtx_history_packets)
            // AV1 layers are named only in this extension (`rtp::dd`); an id str0m's standard
            // map leaves free.
            .set_extension(DD_EXTENSION_ID, Extension::with_serializer(dd::URI, dd::Serializer));
        if let Some(bps) = bwe_initial_bps {
            config = config.enable_bwe(Some(Bitrate::bps(bps)));
        }
        let mut rtc = config.build(now);
        for c in &self.candidates {
            rtc.add_local_candidate(c.clone());
        }
        if bwe_initial_bps.is_some() {
            rtc.bwe().set_bitrate(Bitrate::ZERO, Bitrate::bps(self.settings.bwe_desired_bps));
        }
        Ok((rtc, ufrag))
    }

    /// Parse and answer an offer on a fresh connection; returns its audio/video sections as
    /// negotiated (str0m reports `MediaAdded` only once the connection is up, too late to
    /// refuse an unusable offer, so the sections are read from the offer's mids).
    pub(super) fn answer(
        &mut self,
        sdp: &str,
        estimates: bool,
        session_id: &str,
        connection_id: &str,
        role: Role,
    ) -> Result<(ConnId, Box<Conn>, String, Vec<Section>)> {
        let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| RouterError::BadSdp(e.to_string()))?;
        let now = Instant::now();
        let bwe_initial_bps = self.settings.bwe_initial_bps.filter(|_| estimates);
        // Transport-wide feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01)
        // serves an estimator at the sending end. A publisher's own estimator needs the router's
        // feedback, so its connection always negotiates it. A subscription the router does not
        // estimate would only cost: str0m numbering and recording every copy sent, and the
        // subscriber's feedback packets (a dozen a second) decrypted and parsed for nothing.
        let twcc = matches!(role, Role::Publisher(_)) || bwe_initial_bps.is_some();
        let (mut rtc, ufrag) = self.new_rtc(bwe_initial_bps, twcc, now)?;
        let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| RouterError::OfferRefused(e.to_string()))?;
        let sections = sdp
            .lines()
            .filter_map(|l| l.trim_end().strip_prefix("a=mid:"))
            .filter_map(|mid| {
                let media = rtc.media(Mid::from(mid.trim()))?;
                let rids = match media.rids_rx() {
                    Rids::Specific(rids) => rids.clone(),
                    _ => Vec::new(),
                };
                Some(Section { mid: media.mid(), kind: media.kind(), direction: media.direction(), rids })
            })
            .collect();
        let id = ConnId(self.next_id);
        self.next_id += 1;
        let mut conn = Box::new(Conn {
            rtc,
            ufrag,
            session_id: session_id.to_owned(),
            connection_id: connection_id.to_owned(),
            role,
            created: now,
            connected: false,
            failing: false,
            counters: Counters::default(),
            bwe_bps: None,
            bwe_initial_bps,
            deadline: None,
        });
        let mut ctx = self.ctx(now);
        drain(id, &mut conn, &mut ctx);
        Ok((id, conn, answer::finish(&answer.to_sdp_string()), sections))
    }

    pub(super) fn install(&mut self, id: ConnId, conn: Box<Conn>) {
        let target = match &conn.role {
            Role::Publisher(p) => Target::Publisher { stream_id: p.stream_id.clone() },
            Role::Subscriber(s) => Target::Subscriber { subscription_id: s.subscription_id.clone() },
        };
        self.labels.insert(
            id,
            Label { session_id: conn.session_id.clone(), connection_id: conn.connection_id.clone(), target },
        );
        self.demux.register(id, conn.ufrag.clone());
        self.owners.entry((conn.session_id.clone(), conn.connection_id.clone())).or_default().push(id);
        self.conns.insert(id, conn);
    }

    pub(super) fn publish(&mut self, spec: PublishSpec) -> Result<String> {
        let key = (spec.session_id.clone(), spec.stream_id.clone());
        if self.streams.contains_key(&key) {
            return Err(RouterError::StreamExists { session_id: spec.session_id, stream_id: spec.stream_id });
        }
        let role = Role::Publisher(Publisher {
            stream_id: spec.stream_id.clone(),
            tracks: Vec::new(),
            subscribers: Vec::new(),
            video_size: spec.video_size,
            vp8_pts: Vec::new(),
            vp9_pts: Vec::new(),
            av1_pts: Vec::new(),
        });
        let (id, mut conn, answer, sections) =
            self.answer(&spec.sdp_offer, false, &spec.session_id, &spec.connection_id, role)?;
        let tracks: Vec<Track> = sections
            .into_iter()
            .filter(|m| matches!(m.direction, Direction::RecvOnly | Direction::SendRecv))
            .map(|m| {
                let layers = if m.rids.is_empty() {
                    vec![Layer::new(None)]
                } else {
                    m.rids.into_iter().map(|r| Layer::new(Some(r))).collect()
                };
                Track { mid: m.mid, kind: m.kind, layers, svc: false, dd: None, dynacast: Default::default() }
            })
            .collect();
        if tracks.is_empty() {
            return Err(RouterError::NoUsableMedia("the publisher's offer sends no audio or video".into()));
        }
        // Only what the publisher offered on its video sections: str0m's codec config also
        // lists codecs the router could take but this publisher will never send, and a VP9
        // or AV1 payload type here means layers a subscription's estimate may have to choose
        // (`has_layers_to_choose`).
        let offered: Vec<str0m::media::Pt> = tracks
            .iter()
            .filter(|t| t.kind == MediaKind::Video)
            .filter_map(|t| conn.rtc.media(t.mid).map(|m| m.remote_pts().to_vec()))
            .flatten()
            .collect();
        let pts_of = |codec: str0m::format::Codec| -> Vec<str0m::media::Pt> {
            conn.rtc
                .codec_config()
                .params()
                .iter()
                .filter(|c| c.spec().codec == codec && offered.contains(&c.pt()))
                .map(|c| c.pt())
                .collect()
        };
        let (vp8_pts, vp9_pts) = (pts_of(str0m::format::Codec::Vp8), pts_of(str0m::format::Codec::Vp9));
        let av1_pts = pts_of(str0m::format::Codec::Av1);
        if let Role::Publisher(p) = &mut conn.role {
            p.tracks = tracks;
            p.vp8_pts = vp8_pts;
            p.vp9_pts = vp9_pts;
            p.av1_pts = av1_pts;
        }
        self.install(id, conn);
        self.streams.insert(key, id);
        Ok(answer)
    }

    pub(super) fn subscribe(&mut self, spec: SubscribeSpec) -> Result<String> {
        let key = (spec.session_id.clone(), spec.subscription_id.clone());
        if self.subscriptions.contains_key(&key) {
            return Err(RouterError::SubscriptionExists {
                session_id: spec.session_id,
                subscription_id: spec.subscription_id,
            });
        }
        let Some(&publisher) = self.streams.get(&(spec.session_id.clone(), spec.stream_id.clone())) else {
            return Err(RouterError::UnknownStream { session_id: spec.session_id, stream_id: spec.stream_id });
        };
        let role = Role::Subscriber(Subscriber {
            subscription_id: spec.subscription_id.clone(),
            stream_id: spec.stream_id.clone(),
            publisher,
            routes: Vec::new(),
            behind: false,
            flushing: false,
            last_drop: None,
            queued_bytes_peak: 0,
            wish: spec.wish,
            reported: None,
        });
        let estimates = self.settings.bwe_every_subscription || self.has_layers_to_choose(publisher);
        let (id, mut conn, answer, sections) =
            self.answer(&spec.sdp_offer, estimates, &spec.session_id, &spec.connection_id, role)?;
        let routes = self.routes(publisher, &mut conn, sections)?;
        if let Role::Subscriber(s) = &mut conn.role {
            s.routes = routes;
        }
        self.install(id, conn);
        self.subscriptions.insert(key, id);
        if let Some(Role::Publisher(p)) = self.conns.get_mut(&publisher).map(|c| &mut c.role) {
            p.subscribers.push(id);
        }
        // The first choice of layer, so the route knows which key frame to wait for.
        self.choose_layers(publisher, Instant::now());
        Ok(answer)
    }

    /// Pair the publisher's tracks with the subscriber's sending sections: the n-th publisher
    /// track of a kind goes to the n-th subscriber section of that kind, with the payload
    /// types mapped codec by codec.
    pub(super) fn routes(&mut self, publisher: ConnId, sub: &mut Conn, sections: Vec<Section>) -> Result<Vec<Route>> {
        let sub_sections: Vec<(Mid, MediaKind)> = sections
            .into_iter()
            .filter(|m| matches!(m.direction, Direction::SendOnly | Direction::SendRecv))
            .map(|m| (m.mid, m.kind))
            .collect();
        let Some(pc) = self.conns.get_mut(&publisher) else {
            return Err(RouterError::Stopped);
        };
        let Role::Publisher(p) = &pc.role else {
            return Err(RouterError::Stopped);
        };
        let tracks: Vec<(Mid, MediaKind)> = p.tracks.iter().map(|t| (t.mid, t.kind)).collect();
        let mut routes = Vec::new();
        let mut used = vec![false; sub_sections.len()];
        for (pub_mid, kind) in tracks {
            let Some(slot) = (0..sub_sections.len()).find(|&i| !used[i] && sub_sections[i].1 == kind) else {
                continue;
            };
            used[slot] = true;
            let sub_mid = sub_sections[slot].0;
            // RTP mode has no `Writer` (str0m panics on `Rtc::writer`): the codecs each side
            // negotiated are its codec config restricted to the section's remote payload types.
            let Some(pub_media) = pc.rtc.media(pub_mid) else {
                continue;
            };
            let pub_params: Vec<_> = pc
                .rtc
                .codec_config()
                .params()
                .iter()
                .filter(|p| pub_media.remote_pts().contains(&p.pt()))
                .copied()
                .collect();
            let Some(sub_media) = sub.rtc.media(sub_mid) else {
                continue;
            };
            let sub_pts: Vec<_> = sub_media.remote_pts().to_vec();
            let sub_config = sub.rtc.codec_config();
            let pts: Vec<_> = pub_params
                .iter()
                .filter_map(|pp| {
                    sub_config
                        .match_params(*pp)
                        .map(|m| m.pt())
                        .filter(|pt| sub_pts.contains(pt))
                        .map(|s| (pp.pt(), s, pp.spec().codec))
                })
                .collect();
            if pts.is_empty() {
                tracing::debug!("no common codec for {kind:?} between publisher and subscriber");
                continue;
            }
            // RFC 3550 §5.1: the first sequence number is random.
            let mut first = [0u8; 2];
            getrandom::fill(&mut first).map_err(RouterError::Entropy)?;
            routes.push(Route::new(pub_mid, sub_mid, kind, pts, u16::from_be_bytes(first)));
        }
        if routes.is_empty() {
            return Err(RouterError::NoUsableMedia(
                "the subscriber's offer has no audio/video section that can receive the published tracks \
                 (recvonly, with a codec in common)"
                    .into(),
            ));
        }
        Ok(routes)
    }

    pub(super) fn add_candidate(&mut self, session_id: String, target: Target, candidate: &str) -> Result<()> {
        let id = match &target {
            Target::Publisher { stream_id } => {
                self.streams.get(&(session_id.clone(), stream_id.clone())).copied().ok_or_else(|| {
                    RouterError::UnknownStream { session_id: session_id.clone(), stream_id: stream_id.clone() }
                })?
            }
            Target::Subscriber { subscription_id } => {
                self.subscriptions.get(&(session_id.clone(), subscription_id.clone())).copied().ok_or_else(|| {
                    RouterError::UnknownSubscription {
                        session_id: session_id.clone(),
                        subscription_id: subscription_id.clone(),
                    }
                })?
            }
        };
        let line = candidate.trim().trim_start_matches("a=");
        if line.is_empty() {
            // An empty candidate is the browser's end-of-candidates marker.
            return Ok(());
        }
        let c = Candidate::from_sdp_string(line).map_err(|e| RouterError::BadCandidate(e.to_string()))?;
        let now = Instant::now();
        let Some(mut conn) = self.conns.remove(&id) else {
            return Ok(());
        };
        self.current = Some(id);
        conn.rtc.add_remote_candidate(c);
        let mut ctx = self.ctx(now);
        drain(id, &mut conn, &mut ctx);
        self.conns.insert(id, conn);
        self.current = None;
        Ok(())
    }

    /// Remove a connection and everything that points at it; a publisher takes its
    /// subscribers with it. `event` is reported for this connection (teardown the caller
    /// asked for reports nothing).
    pub(super) fn close(&mut self, id: ConnId, event: Option<RouterEventKind>) {
        let Some(mut conn) = self.conns.remove(&id) else {
            return;
        };
        self.labels.remove(&id);
        self.placement.release(&conn.session_id);
        conn.rtc.disconnect();
        self.demux.remove(id, &conn.ufrag);
        self.closed.add(&conn.counters);
        let owner = (conn.session_id.clone(), conn.connection_id.clone());
        if let Some(ids) = self.owners.get_mut(&owner) {
            ids.retain(|x| *x != id);
            if ids.is_empty() {
                self.owners.remove(&owner);
            }
        }
        let target = match &conn.role {
            Role::Publisher(p) => Target::Publisher { stream_id: p.stream_id.clone() },
            Role::Subscriber(s) => Target::Subscriber { subscription_id: s.subscription_id.clone() },
        };
        // This connection's own event first, then those of the subscribers it takes along.
        if let Some(kind) = event {
            self.emit(RouterEvent {
                session_id: conn.session_id.clone(),
                connection_id: conn.connection_id.clone(),
                target,
                kind,
            });
        }
        match conn.role {
            Role::Publisher(p) => {
                let key = (conn.session_id.clone(), p.stream_id);
                if self.streams.get(&key) == Some(&id) {
                    self.streams.remove(&key);
                }
                if let Some(d) = self.speakers.get_mut(&conn.session_id) {
                    d.remove(&id);
                }
                for sub in p.subscribers {
                    self.close(sub, Some(RouterEventKind::Closed(CloseReason::StreamEnded)));
                }
            }
            Role::Subscriber(s) => {
                let key = (conn.session_id.clone(), s.subscription_id);
                if self.subscriptions.get(&key) == Some(&id) {
                    self.subscriptions.remove(&key);
                }
                if let Some(Role::Publisher(p)) = self.conns.get_mut(&s.publisher).map(|c| &mut c.role) {
                    p.subscribers.retain(|x| *x != id);
                }
            }
        }
    }

    pub(super) fn close_all(&mut self) {
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            self.close(id, None);
        }
    }

    pub(super) fn emit(&mut self, event: RouterEvent) {
        if let Some(sink) = self.on_event.as_mut() {
            sink(event);
        }
    }

    /// Whether a subscription to `publisher` has anything for a bandwidth estimate to choose
    /// (`RouterConfig::bwe_every_subscription`): a video track with several rid layers, a
    /// codec negotiated that can carry spatial layers in one stream (VP9, AV1: whether it
    /// will is only seen in its packets), or temporal layers seen so far. Decided once, when
    /// the subscription's connection is built: str0m fixes BWE at that point.
    fn has_layers_to_choose(&self, publisher: ConnId) -> bool {
        let Some(Role::Publisher(p)) = self.conns.get(&publisher).map(|c| &c.role) else {
            return true;
        };
        let mut video = p.tracks.iter().filter(|t| t.kind == MediaKind::Video).peekable();
        if video.peek().is_none() {
            return false;
        }
        !p.vp9_pts.is_empty()
            || !p.av1_pts.is_empty()
            || video.any(|t| {
                t.layers.len() > 1 || t.svc || t.layers.iter().any(|l| l.meter.rates().top_tid.unwrap_or(0) > 0)
            })
    }
}
