//! The media path between connections: RTP packets to subscribers, keyframe requests to
//! publishers.
//!
//! # RTP, not frames
//!
//! Every connection runs str0m in RTP mode (`RtcConfig::set_rtp_mode`): a publisher's
//! packets come out as `Event::RtpPacket` (SRTP removed, RTX unwrapped, each sequence number
//! once) and go to each subscriber with `StreamTx::write_rtp`, the payload an `Arc<[u8]>`
//! allocated once per incoming packet and shared by every subscriber's send queue and RTX
//! history. Nothing is depacketized or repacketized, so an E2EE payload leaves bit for bit as
//! it came (and the router needs no frame assembly, no jitter buffer). The packets of one
//! publisher that came in one `recvmmsg` batch are written to a subscriber together, and the
//! subscriber's connection is drained (str0m polled, datagrams queued for `sendmmsg`) once.
//!
//! Per subscriber track the router rewrites:
//!
//! - the SSRC (str0m's, per send stream) and the payload type (negotiated per subscriber);
//! - the sequence number: `rtp::seqmap`, so the packets the overload rule drops leave no
//!   gap, real loss keeps its gap, and a repaired packet arriving late fills exactly its hole;
//!   the extended number, and with it the SRTP rollover counter, is the router's;
//! - the header extensions it forwards: audio level/voice activity, video orientation and
//!   content type (the others are per hop: str0m writes mid, rid, TWCC and abs-send-time).
//!
//! - the RTP timestamp, on video, by a per-route offset (below);
//!
//! # Simulcast layers
//!
//! A publisher's video track may come as several rid layers (`Track::layers`, smallest first).
//! Each video route forwards one of them, `Selection::current`, and has a target chosen by
//! `crate::layers` (wish, measured layer bitrates, the subscriber's bandwidth estimate; see
//! `engine::layers`). The switch to the target happens only at a packet that starts a key
//! frame of the target layer, asked for from the publisher at once (PLI on that rid's receive
//! stream, folded by `keyframe_request_interval` per layer). At the switch
//!
//! - the sequence map is re-based (`SeqMap::rebase`): the new layer's numbers continue the
//!   subscriber's without a gap; packets of the old layer are not forwarded any more, and the
//!   new layer's packets from before the switch are stale;
//! - the timestamp offset is chosen so the first output timestamp of the new layer follows the
//!   last one sent by the time elapsed between the two packets' arrival, in the 90 kHz clock.
//!
//! A new route (a join) has no current layer: it forwards nothing until a key frame of its
//! target layer. A paused route (`video: false`) forwards no video at all.
//!
//! Temporal layers: on VP8 with the descriptor's T bit, a frame whose TID is above the route's
//! cap is dropped through the sequence map (no gap the subscriber would NACK). A cap is
//! lowered at any frame, raised only at a TID 0 frame, which every higher layer may reference.
//!
//! VP8 picture ids and TL0PICIDX are rewritten from the first switch on so they continue
//! across it (`rtp::vp8ids`; libwebrtc would tolerate the jump at a key frame, other receivers
//! need not); frames thinned by a temporal cap leave picture id gaps, which temporal
//! scalability is made for (TL0PICIDX and TID say what each frame depends on).
//!
//! # SVC
//!
//! A rid-less VP9 or AV1 track whose layer structure (VP9: the descriptor's scalability
//! structure, `rtp::vp9`; AV1: the Dependency Descriptor's template structure, `rtp::dd`)
//! has several spatial layers becomes SVC (`Track::svc`): its layers are the spatial layers of
//! one stream, each packet's layer its spatial id. A route then forwards the layers up to
//! `Selection::current`, so there is one sequence and timestamp space and no rebase:
//!
//! - packets of higher layers are dropped through the sequence map, so no gap shows;
//! - the RTP marker (end of picture) is set on the last packet of the route's top layer;
//! - down-switches happen at the next picture (no layer references a higher one); up-switches
//!   and starts at a key picture (the modes the SDKs use, `L3T3_KEY`, predict between spatial
//!   layers only there), asked for like a simulcast layer's key frame;
//! - temporal caps work as on VP8, from the descriptor's TID;
//! - AV1 packets keep their Dependency Descriptor, which is how the subscriber's browser finds
//!   the layer frames of a picture (each is encrypted on its own).
//!
//! Frames still matter to the overload rule (`overload.rs`): it decides at the first packet
//! of a frame (a new RTP timestamp) and the whole frame follows that decision; a video track
//! that lost a frame resumes only at a packet that starts a key frame, read from the codec's
//! payload descriptor and frame header (`rtp::keyframe`; those bytes stay clear under E2EE).
//! A key frame whose first packet arrives late (after later ones) is not resumed at: the
//! packets before it were already dropped, so the subscriber would see a hole that no
//! retransmission can fill; the next key frame is waited for instead.
//!
//! Repair: NACKs from a subscriber are answered by its str0m send stream from its RTX history
//! (packets are written `nackable` for video); the router's own NACKs to the publisher are
//! str0m's receive side; a publisher packet lost for good shows up downstream as a real gap,
//! which the subscriber NACKs and then answers with a PLI, relayed here. Frame mode's
//! "frame arrived incomplete" PLI has no equivalent: str0m no longer assembles frames.
//! TWCC and bandwidth estimation stay str0m's.

use super::*;
use crate::layers::Interim;
use crate::rtp::keyframe::starts_keyframe;
use crate::rtp::layers::{switch_ts_offset, vp8_key_size, vp8_tid};
use crate::rtp::seqmap::Slot;
use crate::rtp::{dd, vp9};
use str0m::format::Codec;
use str0m::rtp::{ExtensionValues, RtpPacket, RtpWrite};

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
        let wanted: Vec<(ConnId, Mid, usize)> = match &conn.role {
            Role::Subscriber(s) => s
                .routes
                .iter()
                .filter(|r| r.kind == MediaKind::Video)
                .filter_map(|r| r.sel.target.map(|t| (s.publisher, r.pub_mid, t.layer)))
                .collect(),
            Role::Publisher(_) => Vec::new(),
        };
        self.emit(event);
        for (publisher, mid, layer) in wanted {
            self.request_keyframe(publisher, mid, layer, KeyframeRequestKind::Pli, false, now);
        }
    }

    pub(super) fn request_keyframe(
        &mut self,
        publisher: ConnId,
        mid: Mid,
        layer: usize,
        kind: KeyframeRequestKind,
        relayed: bool,
        now: Instant,
    ) {
        let Some(mut pc) = self.conns.remove(&publisher) else {
            return;
        };
        let outer = self.current.replace(publisher);
        let sent = ask_for_keyframe(&mut pc, mid, layer, kind, self.settings.keyframe_request_interval, now);
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

    /// Forward packets of one publisher, in order: each subscriber gets all of them written
    /// and is then drained once, so str0m's per-poll fixed cost is paid once per group (the
    /// packets of a frame that arrived in one `recvmmsg` batch), not once per packet.
    pub(super) fn forward(&mut self, from: ConnId, group: &mut Vec<Inbound>) {
        let Some(pc) = self.conns.get_mut(&from) else {
            return;
        };
        let Role::Publisher(p) = &mut pc.role else {
            return;
        };
        // Packets of a rid the offer did not list have no layer and go nowhere.
        group.retain_mut(|i| match p.tracks.iter().find(|t| t.mid == i.mid).and_then(|t| t.layer_of(i.rid)) {
            Some(layer) => {
                i.layer = layer;
                true
            }
            None => false,
        });
        if group.is_empty() {
            return;
        }
        let now = Instant::now();
        for i in group.iter_mut() {
            let Some(track) = p.tracks.iter_mut().find(|t| t.mid == i.mid) else {
                continue;
            };
            let pt = i.packet.header.payload_type;
            if track.kind == MediaKind::Video && p.vp9_pts.contains(&pt) {
                if let Some(d) = vp9::parse(&i.packet.payload) {
                    if let Some(s) = &d.structure {
                        track.learn_layers(i.layer, s.layers, |k| s.size(k));
                    }
                    i.tid = d.tid;
                    if track.svc {
                        i.layer = usize::from(d.sid.unwrap_or(0)).min(track.layers.len() - 1);
                        i.svc = Some(SvcPacket { begins_picture: d.begins_picture(), ends_frame: d.ends_frame });
                    }
                }
            } else if track.kind == MediaKind::Video
                && p.av1_pts.contains(&pt)
                && let Some(d) = i.packet.header.ext_vals.user_values.get::<dd::Raw>().and_then(|r| dd::parse(&r.0))
            {
                if let Some(s) = d.structure {
                    track.learn_layers(i.layer, s.spatial_layers(), |k| s.size(k));
                    track.dd = Some(s);
                }
                if let Some((sid, tid)) = track.dd.as_ref().and_then(|s| s.layer_of(d.template_id)) {
                    i.tid = Some(tid);
                    if track.svc {
                        i.layer = usize::from(sid).min(track.layers.len() - 1);
                        let begins_picture = d.start_of_frame && sid == 0;
                        i.svc = Some(SvcPacket { begins_picture, ends_frame: d.end_of_frame });
                    }
                }
            }
            let layer = &mut track.layers[i.layer];
            let new_frame = layer.last_timestamp != Some(i.packet.header.timestamp);
            if new_frame {
                layer.last_timestamp = Some(i.packet.header.timestamp);
                if i.svc.is_none_or(|s| s.begins_picture) {
                    pc.counters.frames_in += 1;
                }
            }
            if track.kind == MediaKind::Video {
                if p.vp8_pts.contains(&pt) {
                    i.tid = vp8_tid(&i.packet.payload);
                    if let Some(size) = vp8_key_size(&i.packet.payload) {
                        layer.size = Some(size);
                    }
                }
                layer.meter.record(now, i.packet.payload.len(), i.tid, new_frame);
            } else if let Some(level) = i.packet.header.ext_vals.audio_level {
                match self.speakers.get_mut(&pc.session_id) {
                    Some(d) => d.observe(&from, level, now),
                    None => {
                        let mut d = SpeakerDetector::default();
                        d.observe(&from, level, now);
                        self.speakers.insert(pc.session_id.clone(), d);
                    }
                }
            }
            if let Some(tap) = &self.tap {
                tap(TapDirection::ForwardedPayload, &i.packet.payload);
            }
        }
        // Copied into a buffer kept across packets, not taken: a panic while forwarding must
        // not leave the publisher without its subscriber list.
        let mut subscribers = std::mem::take(&mut self.fanout);
        subscribers.clear();
        subscribers.extend_from_slice(&p.subscribers);
        let limits = overload::Limits {
            max_age: self.settings.max_queue_delay,
            max_bytes: self.settings.max_queue_bytes,
            max_packets: self.settings.max_queue_packets,
        };
        // Video layers (publisher mid, layer) on which a subscriber lost a frame or waits for
        // a key frame.
        let mut want_keyframe: Vec<(Mid, usize)> = Vec::new();
        // Subscribers whose layer changed.
        let mut switched: Vec<ConnId> = Vec::new();
        for &sid in &subscribers {
            let Some(mut sc) = self.conns.remove(&sid) else {
                continue;
            };
            self.current = Some(sid);
            let mut must_drain = false;
            for i in group.iter() {
                match deliver(&mut sc, i, &limits, now) {
                    Delivery::Sent { new_frame, switched: s } => {
                        if new_frame {
                            sc.counters.frames_forwarded += 1;
                        }
                        if s && !switched.contains(&sid) {
                            switched.push(sid);
                        }
                        must_drain = true;
                    }
                    Delivery::Skipped => {}
                    Delivery::AwaitingKeyframe => {
                        if !want_keyframe.contains(&(i.mid, i.layer)) {
                            want_keyframe.push((i.mid, i.layer));
                        }
                    }
                    Delivery::NotRoutable { new_frame } => {
                        if new_frame {
                            sc.counters.frames_dropped += 1;
                        }
                    }
                    Delivery::Late { episode_started, video } => {
                        if video && !want_keyframe.contains(&(i.mid, i.layer)) {
                            want_keyframe.push((i.mid, i.layer));
                        }
                        if episode_started {
                            self.report.episodes += 1;
                            // The flush (unpaced) takes effect on the connection's next poll.
                            must_drain = true;
                        }
                        self.report.dropped += 1;
                    }
                }
            }
            if must_drain {
                let mut ctx = self.ctx(now);
                drain(sid, &mut sc, &mut ctx);
            }
            self.conns.insert(sid, sc);
            self.current = None;
            // A large fan-out goes to the kernel in chunks, whole subscribers at a time, so the
            // send thread sends these copies while the worker protects the next (`sender`).
            if subscribers.len() >= crate::sender::MIN_FANOUT && self.outbox.items.len() >= crate::sender::CHUNK {
                self.send_outbox(None, true);
            }
        }
        if !subscribers.is_empty() {
            // Recorded once the batch is handed to the kernel (`Engine::flush`).
            let earliest = group.iter().map(|i| i.received).min().unwrap_or(now);
            self.forwarded_since = Some(self.forwarded_since.map_or(earliest, |t| t.min(earliest)));
        }
        self.fanout = subscribers;
        for (mid, layer) in want_keyframe {
            // A dropped frame leaves those subscribers' decoders stuck until the next keyframe;
            // a route waiting to switch or to start waits for one. Checked here rather than
            // folded by `ask_for_keyframe`: every packet of a waited-for layer lands here, and
            // is not a request of its own.
            if !self.keyframe_due(from, mid, layer, now) {
                continue;
            }
            self.request_keyframe(from, mid, layer, KeyframeRequestKind::Pli, false, now);
        }
        for sid in switched {
            self.report_layer(sid);
        }
    }
}

/// One publisher packet waiting to be forwarded.
pub(super) struct Inbound {
    pub mid: Mid,
    pub rid: Option<Rid>,
    /// Index of `rid` in the track's layers (set by `forward`).
    pub layer: usize,
    /// VP8 or VP9 temporal layer, when the descriptor has one (set by `forward`).
    pub tid: Option<u8>,
    /// Set by `forward` on a packet of an SVC track (`layer` is then its spatial layer).
    pub svc: Option<SvcPacket>,
    pub packet: Box<RtpPacket>,
    pub received: Instant,
}

/// Where an SVC packet sits in its picture (from the VP9 descriptor).
#[derive(Debug, Clone, Copy)]
pub(super) struct SvcPacket {
    /// The first packet of the picture (spatial layer 0 begins).
    pub begins_picture: bool,
    /// The last packet of its layer frame: the end of the picture for a subscriber whose top
    /// spatial layer this is.
    pub ends_frame: bool,
}

enum Delivery {
    /// Written; `new_frame` on the first packet of a frame, `switched` on the first packet of
    /// a layer.
    Sent { new_frame: bool, switched: bool },
    /// A packet of the target layer that is no key frame start, on a route that waits for one.
    AwaitingKeyframe,
    /// Not written and nothing to count: the rest of a frame already dropped, or a late
    /// packet from before the current sequence segment.
    Skipped,
    /// No route for the track, codec not negotiated, not connected yet.
    NotRoutable { new_frame: bool },
    /// A frame dropped by the overload rule (`overload.rs`), at its first packet;
    /// `episode_started` on the first drop since a frame last went out.
    Late { episode_started: bool, video: bool },
}

/// Offer one packet to one subscriber: sequence slot, the overload rule once per frame, then
/// the write.
fn deliver(sc: &mut Conn, i: &Inbound, limits: &overload::Limits, now: Instant) -> Delivery {
    let (pub_mid, packet, received) = (i.mid, &*i.packet, i.received);
    let input = *packet.seq_no;
    let timestamp = packet.header.timestamp;
    let connected = sc.connected;
    let Role::Subscriber(s) = &mut sc.role else {
        return Delivery::Skipped;
    };
    let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == pub_mid) else {
        return Delivery::Skipped;
    };
    // The route starts on a layer here (a join, a resume, a switch), and whether it left one.
    let (mut started, mut switched) = (false, false);
    if route.kind == MediaKind::Video {
        let Some(target) = route.sel.target else {
            // Paused: no video at all; whatever comes next starts at a key frame.
            route.sel.current = None;
            return Delivery::Skipped;
        };
        if let Some(svc) = i.svc {
            // One stream, spatial layers 0..=current forwarded. Down at any picture (no layer
            // references a higher one); up, or a start, only at a key picture, where the
            // higher layers begin afresh.
            if svc.begins_picture && route.sel.current != Some(target.layer) && connected {
                let up = route.sel.current.is_none_or(|c| target.layer > c);
                let codec = route.pt_for(packet.header.payload_type).map(|(_, c)| c);
                if !up || codec.is_some_and(|c| starts_keyframe(c, &packet.payload)) {
                    let sel = &mut route.sel;
                    started = true;
                    switched = sel.current.is_some();
                    if sel.current.is_none() {
                        sel.tid_cap = target.tid_cap;
                        route.seq.rebase();
                        route.frame = None;
                        route.waiting_keyframe = false;
                    }
                    sel.current = Some(target.layer);
                }
            }
            if route.sel.current.is_none() {
                return if connected { Delivery::AwaitingKeyframe } else { Delivery::Skipped };
            }
        } else if route.sel.current != Some(i.layer) {
            if target.layer != i.layer {
                return Delivery::Skipped;
            }
            if !connected {
                // `connected` asks for the key frame once the subscriber is up.
                return Delivery::Skipped;
            }
            let codec = route.pt_for(packet.header.payload_type).map(|(_, c)| c);
            if !codec.is_some_and(|c| starts_keyframe(c, &packet.payload)) {
                return Delivery::AwaitingKeyframe;
            }
            let sel = &mut route.sel;
            sel.ts_offset = switch_ts_offset(sel.last_out, timestamp, received);
            started = true;
            switched = sel.current.is_some();
            sel.current = Some(i.layer);
            sel.tid_cap = target.tid_cap;
            sel.interim = Interim::Whole;
            if codec == Some(Codec::Vp8) {
                sel.vp8.rebase(&packet.payload);
            }
            route.seq.rebase();
            route.frame = None;
            route.waiting_keyframe = false;
        }
    }
    // An SVC subscriber's picture ends with its top layer's frame.
    let marker = packet.header.marker || i.svc.is_some_and(|s| s.ends_frame && route.sel.current == Some(i.layer));
    let out = match route.seq.classify(input) {
        Slot::Stale => return Delivery::Skipped,
        // Inside the current segment: every frame in it was admitted, this one included.
        Slot::Late(out) => out,
        Slot::New => {
            let new_frame = route.frame.is_none_or(|(t, _)| t != timestamp);
            let mapped = route.pt_for(packet.header.payload_type);
            let Some((_, codec)) = mapped.filter(|_| connected) else {
                route.seq.drop_new(input);
                route.frame = Some((timestamp, false));
                return Delivery::NotRoutable { new_frame };
            };
            if i.svc.is_some() && route.sel.current.is_some_and(|c| i.layer > c) {
                route.seq.drop_new(input);
                return Delivery::Skipped;
            }
            let keyframe = route.kind == MediaKind::Video && starts_keyframe(codec, &packet.payload);
            let layer = if i.svc.is_some() { route.sel.current.unwrap_or(i.layer) } else { i.layer };
            if route.kind == MediaKind::Video && new_frame && thin(&mut route.sel, layer, i.tid) {
                route.seq.drop_new(input);
                route.frame = Some((timestamp, false));
                return Delivery::Skipped;
            }
            // A key frame's first packet may follow others of its frame (an SPS/PPS packet
            // ahead of the IDR): decide again there rather than wait for the next key frame.
            let decide = new_frame || (keyframe && route.frame.is_some_and(|(_, admitted)| !admitted));
            if decide {
                let verdict = admit_frame(sc, pub_mid, packet.payload.len(), keyframe, received, limits, now);
                if let Some(late) = verdict {
                    if let Role::Subscriber(s) = &mut sc.role
                        && let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == pub_mid)
                    {
                        route.frame = Some((timestamp, false));
                        route.seq.drop_new(input);
                    }
                    return late;
                }
            } else if route.frame.is_some_and(|(_, admitted)| !admitted) {
                route.seq.drop_new(input);
                return Delivery::Skipped;
            }
            let Role::Subscriber(s) = &mut sc.role else {
                return Delivery::Skipped;
            };
            let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == pub_mid) else {
                return Delivery::Skipped;
            };
            route.frame = Some((timestamp, true));
            let out = route.seq.admit(input);
            route.sel.last_out = Some((timestamp.wrapping_add(route.sel.ts_offset), received));
            if !write_packet(sc, pub_mid, packet, out, marker, i.svc.is_some(), true) {
                return Delivery::NotRoutable { new_frame: decide };
            }
            if switched {
                sc.counters.layer_switches += 1;
            }
            return Delivery::Sent { new_frame: decide, switched: started };
        }
    };
    if !write_packet(sc, pub_mid, packet, out, marker, i.svc.is_some(), false) {
        return Delivery::Skipped;
    }
    Delivery::Sent { new_frame: false, switched: false }
}

/// Apply the route's temporal cap at a new frame of its current layer: true when the frame is
/// to be dropped. A lower cap applies at once; a higher one at a TID 0 frame (see the module
/// doc).
fn thin(sel: &mut crate::conn::Selection, layer: usize, tid: Option<u8>) -> bool {
    let rank = |c: Option<u8>| c.unwrap_or(u8::MAX);
    let want = match (sel.target, sel.interim) {
        (Some(t), _) if t.layer == layer => t.tid_cap,
        (_, Interim::Nothing) => return true,
        (_, Interim::Cap(c)) if rank(Some(c)) < rank(sel.tid_cap) => Some(c),
        _ => sel.tid_cap,
    };
    if rank(want) < rank(sel.tid_cap) || tid.unwrap_or(0) == 0 {
        sel.tid_cap = want;
    }
    matches!((sel.tid_cap, tid), (Some(cap), Some(t)) if t > cap)
}

/// The overload rule for a frame about to start on a route: `None` when it may go out (the
/// subscriber's pacing state updated), else the drop, with the route's sequence segment ended.
fn admit_frame(
    sc: &mut Conn,
    pub_mid: Mid,
    len: usize,
    keyframe: bool,
    received: Instant,
    limits: &overload::Limits,
    now: Instant,
) -> Option<Delivery> {
    let backlog = overload::backlog(sc);
    // BWE on means paced, at this estimate.
    let estimate = sc.estimate_bps();
    let Role::Subscriber(s) = &mut sc.role else {
        return Some(Delivery::Skipped);
    };
    let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == pub_mid) else {
        return Some(Delivery::Skipped);
    };
    s.queued_bytes_peak = s.queued_bytes_peak.max(backlog.bytes);
    let pace_bps = if s.flushing { None } else { estimate };
    let verdict = overload::verdict(&backlog, route, len, keyframe, received, pace_bps, limits, now);
    if verdict != overload::Verdict::Send {
        let video = route.kind == MediaKind::Video;
        if video {
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
        return Some(Delivery::Late { episode_started, video });
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
    None
}

/// Write one packet on the subscriber's stream for the track, numbered `out`, with the RTP
/// marker `marker`; false when it
/// cannot take it (no send stream, codec not negotiated).
fn write_packet(
    sc: &mut Conn,
    pub_mid: Mid,
    packet: &RtpPacket,
    out: u64,
    marker: bool,
    svc: bool,
    newest: bool,
) -> bool {
    let Role::Subscriber(s) = &mut sc.role else {
        return false;
    };
    let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == pub_mid) else {
        return false;
    };
    let Some((pt, codec)) = route.pt_for(packet.header.payload_type) else {
        return false;
    };
    let vp8_patch = if codec == Codec::Vp8 { route.sel.vp8.patch(&packet.payload, newest) } else { None };
    let (sub_mid, kind, ts_offset) = (route.sub_mid, route.kind, route.sel.ts_offset);
    let h = &packet.header;
    let mut ext = ExtensionValues::default();
    if kind == MediaKind::Audio {
        ext.audio_level = h.ext_vals.audio_level;
        ext.voice_activity = h.ext_vals.voice_activity;
    } else {
        ext.video_orientation = h.ext_vals.video_orientation;
        ext.video_content_type = h.ext_vals.video_content_type;
        // An SVC subscriber's browser tells the layer frames of a picture apart by the
        // descriptor (each frame is decrypted on its own). Not on rid layers: their frame
        // numbers would jump at every switch.
        if svc && let Some(raw) = h.ext_vals.user_values.get_arc::<dd::Raw>() {
            ext.user_values.set_arc(raw);
        }
    }
    let mut write =
        RtpWrite::new(pt, out.into(), h.timestamp.wrapping_add(ts_offset), packet.timestamp, packet.payload.clone())
            .marker(marker)
            .ext_vals(ext)
            // Audio is not retransmitted in WebRTC (Opus has its own loss concealment).
            .nackable(kind == MediaKind::Video);
    if let Some(patch) = vp8_patch {
        write = write.vp8_patch(patch);
    }
    let mut api = sc.rtc.direct_api();
    let Some(tx) = api.stream_tx_by_mid(sub_mid, None) else {
        return false;
    };
    tx.write_rtp(write);
    overload::note_write(route, packet.payload.len(), Instant::now());
    true
}

/// Ask the publisher for a keyframe on one track, unless one was asked for within `interval`
/// (then it is on its way and serves this request too). True when a request went out.
fn ask_for_keyframe(
    pc: &mut Conn,
    mid: Mid,
    layer: usize,
    kind: KeyframeRequestKind,
    interval: Duration,
    now: Instant,
) -> bool {
    let Role::Publisher(p) = &mut pc.role else {
        return false;
    };
    let Some(track) = p.tracks.iter_mut().find(|t| t.mid == mid).and_then(|t| {
        let l = t.request_layer(layer);
        t.layers.get_mut(l)
    }) else {
        return false;
    };
    if track.last_keyframe_request.is_some_and(|t| now.duration_since(t) < interval) {
        pc.counters.keyframe_requests_coalesced += 1;
        return false;
    }
    let rid = track.rid;
    // Relay the kind asked for when the publisher negotiated it, else the other one.
    let other = match kind {
        KeyframeRequestKind::Pli => KeyframeRequestKind::Fir,
        _ => KeyframeRequestKind::Pli,
    };
    let possible = |k: KeyframeRequestKind| {
        pc.rtc.codec_config().params().iter().any(|p| match k {
            KeyframeRequestKind::Pli => p.fb_pli(),
            KeyframeRequestKind::Fir => p.fb_fir(),
        })
    };
    let kind = if possible(kind) { kind } else { other };
    match pc.rtc.direct_api().stream_rx_by_mid(mid, rid) {
        Some(rx) => {
            rx.request_keyframe(kind);
            track.last_keyframe_request = Some(now);
            true
        }
        None => {
            // Typically: the publisher has not sent on this track yet, so there is no stream to
            // ask; its first frame will be a keyframe anyway.
            tracing::debug!("keyframe request to publisher: no receive stream yet");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::Selection;
    use crate::layers::Pick;

    #[test]
    fn a_temporal_cap_lowers_at_once_and_rises_at_tid_0() {
        let mut sel =
            Selection { current: Some(1), target: Some(Pick { layer: 1, tid_cap: None }), ..Default::default() };
        // L1T3 frames 0 2 1 2 0 ...: everything passes without a cap.
        assert!(![0, 2, 1, 2].iter().any(|&t| thin(&mut sel, 1, Some(t))));
        // Cap to TID 0: applies at the very next frame, whatever its TID.
        sel.target = Some(Pick { layer: 1, tid_cap: Some(0) });
        assert!(thin(&mut sel, 1, Some(2)));
        assert!(thin(&mut sel, 1, Some(1)));
        assert!(!thin(&mut sel, 1, Some(0)));
        // Lifted: the TID 2 and TID 1 frames before the next TID 0 are still dropped (they
        // may reference frames the subscriber never got).
        sel.target = Some(Pick { layer: 1, tid_cap: None });
        assert!(thin(&mut sel, 1, Some(2)));
        assert!(thin(&mut sel, 1, Some(1)));
        assert!(!thin(&mut sel, 1, Some(0)));
        assert!(!thin(&mut sel, 1, Some(2)));
        // Without temporal layers nothing is thinned.
        sel.target = Some(Pick { layer: 1, tid_cap: Some(0) });
        assert!(!thin(&mut sel, 1, None));
    }

    #[test]
    fn a_forced_down_switch_thins_or_stops_the_current_layer_until_the_switch() {
        // On layer 2, switching to 1: the interim cap applies to the current layer at once.
        let mut sel = Selection {
            current: Some(2),
            target: Some(Pick { layer: 1, tid_cap: None }),
            interim: Interim::Cap(0),
            ..Default::default()
        };
        assert!(thin(&mut sel, 2, Some(2)));
        assert!(thin(&mut sel, 2, Some(1)));
        assert!(!thin(&mut sel, 2, Some(0)));
        // Nothing: every frame of it, whatever its TID or none.
        sel.interim = Interim::Nothing;
        assert!(thin(&mut sel, 2, Some(0)));
        assert!(thin(&mut sel, 2, None));
        // Whole: the current layer goes out as before the switch was chosen.
        let mut sel =
            Selection { current: Some(2), target: Some(Pick { layer: 1, tid_cap: None }), ..Default::default() };
        assert!(![0, 2, 1, 2].iter().any(|&t| thin(&mut sel, 2, Some(t))));
    }
}
