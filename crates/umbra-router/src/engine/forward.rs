//! The media path between connections: frames to subscribers, keyframe requests to publishers.
//!
//! # Why frames, not RTP packets, are forwarded (yet)
//!
//! str0m 0.25's RTP mode (`RtcConfig::set_rtp_mode(true)`: `Event::RtpPacket` in,
//! `StreamTx::write_rtp` out, with the payload an `Arc<[u8]>` one copy can serve every
//! subscriber) would save the depacketize-and-repacketize per subscriber. It is not used yet
//! because switching is more than a flag:
//!
//! - The mode is per `Rtc` and total (`Writer::write` panics in it), so publishers and
//!   subscribers switch together, and what frame mode gives this module for free goes:
//!   `MediaData::is_keyframe` (the overload rule resumes a track only at a keyframe) and
//!   `contiguous` (the broken-frame PLI) would need the router's own payload-descriptor
//!   parsing for VP8, VP9, H.264 and AV1 — on E2EE payloads whose clear prefix differs per
//!   codec.
//! - Sequence numbers must be rewritten per subscriber track (an offset that grows with every
//!   packet the overload rule drops), or subscribers NACK packets that were never sent; the
//!   extended `SeqNo` also carries the SRTP rollover counter, so the counter is the router's.
//!   RTP timestamps can pass through (one publisher per track, no layer switching yet).
//! - Publisher-side repair changes: frame mode waits for NACK/RTX-repaired packets and
//!   reorders; in RTP mode packets go out as they arrive and a repaired one arrives late under
//!   the same sequence number (str0m unwraps RTX), which the per-subscriber offset must map
//!   the same way; TWCC and PLI/FIR relay stay str0m's and this module's.
//!
//! That is a day's work plus the E2EE-through-the-router, loss and browser runs, which did not
//! fit beside the workers and the overload rule; the fan-out bench measures what it saves.

use super::*;

impl Engine {
    pub(super) fn connected(&mut self, id: ConnId, now: Instant) {
        let Some(conn) = self.conns.get(&id) else {
            return;
        };
        let target = match &conn.role {
            Role::Publisher(p) => Target::Publisher { stream_id: p.stream_id.clone() },
            Role::Subscriber(s) => Target::Subscriber { subscription_id: s.subscription_id.clone() },
        };
        let event = RouterEvent {
            session_id: conn.session_id.clone(),
            connection_id: conn.connection_id.clone(),
            target,
            kind: RouterEventKind::Connected,
        };
        // A new subscriber can decode nothing until the next keyframe: ask for one now rather
        // than wait for the publisher's periodic one (or the subscriber's own PLI).
        let wanted: Vec<(ConnId, Mid)> = match &conn.role {
            Role::Subscriber(s) => {
                s.routes.iter().filter(|r| r.kind == MediaKind::Video).map(|r| (s.publisher, r.pub_mid)).collect()
            }
            Role::Publisher(_) => Vec::new(),
        };
        self.emit(event);
        for (publisher, mid) in wanted {
            self.request_keyframe(publisher, mid, KeyframeRequestKind::Pli, false, now);
        }
    }

    pub(super) fn request_keyframe(
        &mut self,
        publisher: ConnId,
        mid: Mid,
        kind: KeyframeRequestKind,
        relayed: bool,
        now: Instant,
    ) {
        let Some(mut pc) = self.conns.remove(&publisher) else {
            return;
        };
        let outer = self.current.replace(publisher);
        let sent = ask_for_keyframe(&mut pc, mid, kind, self.settings.keyframe_request_interval, now);
        if sent {
            if relayed {
                pc.counters.keyframe_requests_relayed += 1;
            } else {
                pc.counters.keyframe_requests_originated += 1;
            }
            let mut ctx = self.ctx(now);
            drain(publisher, &mut pc, &mut ctx);
        }
        self.conns.insert(publisher, pc);
        self.current = outer;
    }

    pub(super) fn forward(&mut self, from: ConnId, data: Box<MediaData>, received: Instant) {
        let Some(pc) = self.conns.get_mut(&from) else {
            return;
        };
        let Role::Publisher(p) = &mut pc.role else {
            return;
        };
        let Some(track) = p.tracks.iter().find(|t| t.mid == data.mid) else {
            return;
        };
        if track.rid != data.rid {
            return;
        }
        let broken_video = track.kind == MediaKind::Video && !data.contiguous;
        pc.counters.frames_in += 1;
        // A copy (80 small allocations a second), not a take: a panic while forwarding must not
        // leave the publisher without its subscriber list.
        let subscribers = p.subscribers.clone();
        let has_subscribers = !subscribers.is_empty();
        if let Some(tap) = &self.tap {
            tap(TapDirection::ForwardedFrame, &data.data);
        }
        let now = Instant::now();
        let limits = overload::Limits {
            max_age: self.settings.max_queue_delay,
            max_bytes: self.settings.max_queue_bytes,
            max_packets: self.settings.max_queue_packets,
        };
        let initial_bps = self.settings.bwe_initial_bps;
        let mut want_keyframe = false;
        for &sid in &subscribers {
            let Some(mut sc) = self.conns.remove(&sid) else {
                continue;
            };
            self.current = Some(sid);
            match deliver(&mut sc, &data, received, initial_bps, &limits, now) {
                Delivery::Sent => {
                    sc.counters.frames_forwarded += 1;
                    let mut ctx = self.ctx(now);
                    drain(sid, &mut sc, &mut ctx);
                }
                Delivery::NotRoutable => sc.counters.frames_dropped += 1,
                Delivery::Late { episode_started } => {
                    want_keyframe |= track_kind_is_video(&sc, data.mid);
                    if episode_started {
                        self.report.episodes += 1;
                        // The flush (unpaced) takes effect on the connection's next poll.
                        let mut ctx = self.ctx(now);
                        drain(sid, &mut sc, &mut ctx);
                    }
                    self.report.dropped += 1;
                }
            }
            self.conns.insert(sid, sc);
            self.current = None;
        }
        if has_subscribers {
            self.latency.record(received.elapsed());
        }
        if want_keyframe {
            // A dropped frame leaves those subscribers' decoders stuck until the next keyframe.
            self.request_keyframe(from, data.mid, KeyframeRequestKind::Pli, false, now);
        }
        if broken_video {
            // A frame that lost packets NACK could not recover: the decoders downstream need a
            // keyframe to resume.
            self.request_keyframe(from, data.mid, KeyframeRequestKind::Pli, false, now);
        }
    }
}

enum Delivery {
    Sent,
    /// No route for the track, codec not negotiated, not connected yet.
    NotRoutable,
    /// Dropped by the overload rule (`overload.rs`); `episode_started` on the first drop since
    /// a frame last went out.
    Late {
        episode_started: bool,
    },
}

fn track_kind_is_video(sc: &Conn, pub_mid: Mid) -> bool {
    matches!(&sc.role, Role::Subscriber(s) if s.routes.iter().any(|r| r.pub_mid == pub_mid && r.kind == MediaKind::Video))
}

/// Offer one frame to one subscriber: the overload rule first, then the write.
fn deliver(
    sc: &mut Conn,
    data: &MediaData,
    received: Instant,
    bwe_initial_bps: Option<u64>,
    limits: &overload::Limits,
    now: Instant,
) -> Delivery {
    if !sc.connected {
        return Delivery::NotRoutable;
    }
    let backlog = overload::backlog(sc);
    // BWE on means paced; until str0m reports an estimate it paces at the initial one.
    let estimate = bwe_initial_bps.map(|initial| sc.bwe_bps.unwrap_or(initial));
    let Role::Subscriber(s) = &mut sc.role else {
        return Delivery::NotRoutable;
    };
    let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == data.mid) else {
        return Delivery::NotRoutable;
    };
    s.queued_bytes_peak = s.queued_bytes_peak.max(backlog.bytes);
    let pace_bps = if s.flushing { None } else { estimate };
    let verdict = overload::verdict(&backlog, route, data, received, pace_bps, limits, now);
    if verdict != overload::Verdict::Send {
        if route.kind == MediaKind::Video {
            route.waiting_keyframe = true;
        }
        let episode_started = verdict == overload::Verdict::Drop && !s.behind;
        let flush = !s.flushing;
        if episode_started {
            s.behind = true;
        }
        if verdict == overload::Verdict::Drop {
            s.flushing = true;
            s.last_drop = Some(now);
        }
        sc.counters.frames_dropped_overload += 1;
        if episode_started {
            sc.counters.overload_episodes += 1;
        }
        if flush && verdict == overload::Verdict::Drop {
            overload::set_flush(sc, true);
        }
        return Delivery::Late { episode_started };
    }
    route.waiting_keyframe = false;
    s.behind = false;
    let restore_pacing = s.flushing
        && backlog.packets == 0
        && s.last_drop.is_none_or(|t| now.saturating_duration_since(t) >= overload::RESTORE_PACING_AFTER);
    if restore_pacing {
        s.flushing = false;
        overload::set_flush(sc, false);
    }
    if !write_frame(sc, data) {
        return Delivery::NotRoutable;
    }
    if let Role::Subscriber(s) = &mut sc.role
        && let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == data.mid)
    {
        overload::note_write(route, data.data.len(), now);
    }
    Delivery::Sent
}

/// Write one frame on the subscriber's matching section; false when it cannot take it (codec
/// not negotiated, no writer).
fn write_frame(sc: &mut Conn, data: &MediaData) -> bool {
    let Role::Subscriber(s) = &sc.role else {
        return false;
    };
    let Some(route) = s.routes.iter().find(|r| r.pub_mid == data.mid) else {
        return false;
    };
    let Some(pt) = route.pt_for(data.pt) else {
        return false;
    };
    let (sub_mid, kind) = (route.sub_mid, route.kind);
    let Some(mut w) = sc.rtc.writer(sub_mid) else {
        return false;
    };
    if kind == MediaKind::Audio {
        if let (Some(level), Some(voice)) = (data.ext_vals.audio_level, data.ext_vals.voice_activity) {
            w = w.audio_level(level, voice);
        }
        if data.audio_start_of_talk_spurt {
            w = w.start_of_talkspurt(true);
        }
    } else if let Some(o) = data.ext_vals.video_orientation {
        w = w.video_orientation(o);
    }
    match w.write(pt, data.network_time, data.time, data.data.clone()) {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!("write to subscriber failed: {e}");
            false
        }
    }
}

/// Ask the publisher for a keyframe on one track, unless one was asked for within `interval`
/// (then it is on its way and serves this request too). True when a request went out.
fn ask_for_keyframe(pc: &mut Conn, mid: Mid, kind: KeyframeRequestKind, interval: Duration, now: Instant) -> bool {
    let Role::Publisher(p) = &mut pc.role else {
        return false;
    };
    let Some(track) = p.tracks.iter_mut().find(|t| t.mid == mid) else {
        return false;
    };
    if track.last_keyframe_request.is_some_and(|t| now.duration_since(t) < interval) {
        pc.counters.keyframe_requests_coalesced += 1;
        return false;
    }
    let rid = track.rid;
    let Some(mut w) = pc.rtc.writer(mid) else {
        return false;
    };
    // Relay the kind asked for when the publisher negotiated it, else the other one.
    let other = match kind {
        KeyframeRequestKind::Pli => KeyframeRequestKind::Fir,
        _ => KeyframeRequestKind::Pli,
    };
    let kind = if w.is_request_keyframe_possible(kind) { kind } else { other };
    match w.request_keyframe(rid, kind) {
        Ok(()) => {
            track.last_keyframe_request = Some(now);
            true
        }
        Err(e) => {
            // Typically: the publisher has not sent on this track yet, so there is no stream to
            // ask; its first frame will be a keyframe anyway.
            tracing::debug!("keyframe request to publisher failed: {e}");
            false
        }
    }
}
