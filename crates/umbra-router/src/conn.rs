//! One peer connection as the router keeps it: the str0m `Rtc`, who owns it, what it carries,
//! and the drain step that turns str0m output into datagrams and router work.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use str0m::bwe::BweKind;
use str0m::format::Codec;
use str0m::media::{KeyframeRequest, MediaKind, Mid, Pt, Rid};
use str0m::rtp::RtpPacket;
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

use crate::demux::ConnId;
use crate::handle::VideoWish;
use crate::layers::{Chooser, Dynacast, Interim, Pick};
use crate::rtp::dd;
use crate::rtp::layers::LayerMeter;
use crate::rtp::seqmap::SeqMap;
use crate::rtp::vp8ids::Vp8Ids;
use crate::stats::{ConnectionRole, ConnectionStats, Counters};
use crate::tap::{PacketTap, TapDirection};
use crate::timers::Timers;

pub struct Conn {
    pub rtc: Rtc,
    pub ufrag: String,
    pub session_id: String,
    pub connection_id: String,
    pub role: Role,
    pub created: Instant,
    pub connected: bool,
    /// Set once a failure was queued, so one dying connection reports once.
    pub failing: bool,
    pub counters: Counters,
    pub bwe_bps: Option<u64>,
    /// The first estimate, where send-side bandwidth estimation runs on this connection
    /// (subscribers whose publisher has layers to choose among, see
    /// `RouterConfig::bwe_every_subscription`); `None` where it does not.
    pub bwe_initial_bps: Option<u64>,
    /// The deadline currently in the timer heap for this connection.
    pub deadline: Option<Instant>,
}

pub enum Role {
    Publisher(Publisher),
    Subscriber(Subscriber),
}

pub struct Publisher {
    pub stream_id: String,
    pub tracks: Vec<Track>,
    pub subscribers: Vec<ConnId>,
    /// The declared size of the largest simulcast layer (`PublishSpec::video_size`).
    pub video_size: Option<(u32, u32)>,
    /// The publisher's VP8 payload types: packets whose descriptor the router reads (TID, key
    /// frame size).
    pub vp8_pts: Vec<Pt>,
    /// The publisher's VP9 payload types: packets whose descriptor says which spatial and
    /// temporal layer they carry.
    pub vp9_pts: Vec<Pt>,
    /// The publisher's AV1 payload types: packets whose Dependency Descriptor says the layer.
    pub av1_pts: Vec<Pt>,
}

pub struct Track {
    pub mid: Mid,
    pub kind: MediaKind,
    /// The simulcast layers, in the order of the offer's send rid list (smallest first); one
    /// layer with no rid without simulcast.
    pub layers: Vec<Layer>,
    /// The track's one stream carries spatial layers (VP9 SVC): `layers` are those, smallest
    /// first, all read from that stream; key frames are asked for, and their requests timed,
    /// on `layers[0]`.
    pub svc: bool,
    /// The last AV1 Dependency Descriptor structure seen: which layer each template is.
    pub dd: Option<dd::Structure>,
    /// Which layers subscribers use (see `layers`).
    pub dynacast: Dynacast,
}

/// One simulcast layer (publisher stream) of a track.
pub struct Layer {
    pub rid: Option<Rid>,
    pub last_keyframe_request: Option<Instant>,
    /// RTP timestamp of the last packet forwarded, to count frames (a frame's packets share
    /// one).
    pub last_timestamp: Option<u32>,
    pub meter: LayerMeter,
    /// Read from the last VP8 key frame's header.
    pub size: Option<(u32, u32)>,
}

impl Layer {
    pub fn new(rid: Option<Rid>) -> Layer {
        Layer { rid, last_keyframe_request: None, last_timestamp: None, meter: LayerMeter::default(), size: None }
    }
}

impl Track {
    /// Layer index of a packet's rid (a packet without rid on a simulcast track, or with a rid
    /// the offer did not list, has none).
    pub fn layer_of(&self, rid: Option<Rid>) -> Option<usize> {
        self.layers.iter().position(|l| l.rid == rid)
    }

    /// What a codec's layer structure on layer `layer`'s stream says: `spatial` layers, sized
    /// `size(k)` where it tells. A rid-less track whose structure has several spatial layers
    /// becomes SVC, one layer per spatial layer (never fewer again: a publisher that stops
    /// sending a layer leaves it measuring zero); the structure's sizes are the layers' sizes.
    pub fn learn_layers(&mut self, layer: usize, spatial: u8, size: impl Fn(usize) -> Option<(u32, u32)>) {
        let rid_less = self.layers.len() == 1 && self.layers[0].rid.is_none();
        if (rid_less || self.svc) && spatial > 1 {
            self.svc = true;
            while self.layers.len() < usize::from(spatial) {
                self.layers.push(Layer::new(None));
            }
        }
        if self.svc {
            for (k, l) in self.layers.iter_mut().enumerate() {
                l.size = size(k).or(l.size);
            }
        } else if let Some(l) = self.layers.get_mut(layer) {
            l.size = size(0).or(l.size);
        }
    }

    /// The layer whose keyframe-request state stands for `layer`'s.
    pub fn request_layer(&self, layer: usize) -> usize {
        if self.svc { 0 } else { layer }
    }
}

pub struct Subscriber {
    pub subscription_id: String,
    pub stream_id: String,
    pub publisher: ConnId,
    pub routes: Vec<Route>,
    /// In an overload episode: frames are being dropped; ends when a frame goes out again.
    pub behind: bool,
    /// Video is unpaced so the backlog leaves at once; ends when a frame goes out onto an
    /// empty backlog `RESTORE_PACING_AFTER` after the last drop.
    pub flushing: bool,
    pub last_drop: Option<Instant>,
    pub queued_bytes_peak: usize,
    pub wish: VideoWish,
    /// The last `LayerChanged` reported (rid, temporal cap, paused).
    pub reported: Option<(Option<String>, Option<u8>, bool)>,
}

/// One publisher track forwarded on one subscriber media section.
pub struct Route {
    pub pub_mid: Mid,
    pub sub_mid: Mid,
    pub kind: MediaKind,
    /// Publisher payload type → this subscriber's payload type for the same codec (and the
    /// codec, to find key frames), worked out at subscribe time so the per-packet path is a
    /// short linear lookup.
    pub pts: Vec<(Pt, Pt, Codec)>,
    /// A frame of this (video) track was dropped: nothing decodes until the next keyframe,
    /// so only a keyframe may go out next.
    pub waiting_keyframe: bool,
    /// This subscriber's sequence numbers for the track (see `rtp::seqmap`).
    pub seq: SeqMap,
    /// The frame (RTP timestamp) being forwarded and whether it was admitted: the overload
    /// rule decides once per frame, and a frame goes out whole or not at all.
    pub frame: Option<(u32, bool)>,
    /// Writes since str0m last sampled this track's send queue; see `engine::overload`.
    pub unsampled: Unsampled,
    /// Video: which publisher layer goes out (see `engine::forward`).
    pub sel: Selection,
}

/// The layer state of one video route.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    /// The layer being forwarded; `None` until the first key frame of the target.
    pub current: Option<usize>,
    /// The layer chosen (`None`: paused), with its temporal cap.
    pub target: Option<Pick>,
    /// The cap in force on the current layer.
    pub tid_cap: Option<u8>,
    /// Added to the publisher's RTP timestamps so they continue across a switch.
    pub ts_offset: u32,
    /// Output RTP timestamp of the last packet sent and when that packet arrived.
    pub last_out: Option<(u32, Instant)>,
    pub chooser: Chooser,
    /// The probe target last given to str0m's BWE.
    pub probe_bps: Option<u64>,
    /// VP8 picture id / TL0PICIDX continuity across switches.
    pub vp8: Vp8Ids,
    /// What of the current layer goes out while a forced down-switch waits for its key frame
    /// (`crate::layers::interim`).
    pub interim: Interim,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Unsampled {
    /// `created_at` of the queue sample these writes came after.
    pub sample: Option<Instant>,
    pub bytes: usize,
    pub packets: usize,
    pub first: Option<Instant>,
}

impl Route {
    pub fn new(pub_mid: Mid, sub_mid: Mid, kind: MediaKind, pts: Vec<(Pt, Pt, Codec)>, first_seq: u16) -> Route {
        Route {
            pub_mid,
            sub_mid,
            kind,
            pts,
            waiting_keyframe: false,
            seq: SeqMap::new(first_seq),
            frame: None,
            unsampled: Unsampled::default(),
            sel: Selection::default(),
        }
    }

    pub fn pt_for(&self, publisher_pt: Pt) -> Option<(Pt, Codec)> {
        self.pts.iter().find(|(p, _, _)| *p == publisher_pt).map(|(_, s, c)| (*s, *c))
    }
}

/// Work that draining one connection creates for others; handled by the engine after the
/// drain, so no two connections are ever borrowed at once.
pub enum Work {
    /// One RTP packet from a publisher, on its track `mid` (layer `rid`). Boxed: an
    /// `RtpPacket` is a few hundred bytes (the header extensions) and the queue moves it twice;
    /// its payload is an `Arc` every subscriber's send stream shares.
    Packet {
        from: ConnId,
        mid: Mid,
        rid: Option<Rid>,
        packet: Box<RtpPacket>,
        received: Instant,
    },
    KeyframeRequest {
        from: ConnId,
        req: KeyframeRequest,
    },
    Connected(ConnId),
    Failed(ConnId, String),
}

impl Conn {
    /// The estimate its layers are chosen by and its pacer sends at: the latest from str0m,
    /// the initial one until str0m reports; `None` where no estimation runs (nothing paced).
    pub fn estimate_bps(&self) -> Option<u64> {
        self.bwe_initial_bps.map(|initial| self.bwe_bps.unwrap_or(initial))
    }

    pub fn stats(&mut self) -> ConnectionStats {
        let (queued_bytes, queued_bytes_peak) = match &self.role {
            Role::Subscriber(s) => {
                let peak = s.queued_bytes_peak;
                (crate::engine::backlog(self).bytes, peak)
            }
            Role::Publisher(_) => (0, 0),
        };
        let role = match &self.role {
            Role::Publisher(p) => ConnectionRole::Publisher { stream_id: p.stream_id.clone() },
            Role::Subscriber(s) => ConnectionRole::Subscriber {
                subscription_id: s.subscription_id.clone(),
                stream_id: s.stream_id.clone(),
            },
        };
        ConnectionStats {
            session_id: self.session_id.clone(),
            connection_id: self.connection_id.clone(),
            role,
            connected: self.connected,
            counters: self.counters,
            bwe_estimate_bps: self.bwe_bps,
            video_layer: match &self.role {
                Role::Subscriber(s) => s.reported.as_ref().and_then(|r| r.0.clone()),
                Role::Publisher(_) => None,
            },
            queued_bytes,
            queued_bytes_peak,
        }
    }

    fn is_publisher(&self) -> bool {
        matches!(self.role, Role::Publisher(_))
    }
}

/// What a drain needs besides the connection itself (disjoint fields of the engine).
pub struct DrainCtx<'a> {
    /// Datagrams to send, handed to the kernel in batches once the current unit of work is
    /// done (see `Outbox`).
    pub outbox: &'a mut Outbox,
    pub tap: &'a Option<PacketTap>,
    pub work: &'a mut VecDeque<Work>,
    pub timers: &'a mut Timers,
    /// When the datagram being handled reached the kernel (`now` outside datagram handling):
    /// a frame completed by it has been waiting since then.
    pub arrived: Instant,
}

/// Due deadlines answered inside one drain before the rest wait for the timer heap: a
/// keyframe fanned out is a few dozen packets; the bound keeps one connection from holding
/// the loop.
const IMMEDIATE_TIMEOUTS_PER_DRAIN: usize = 256;

/// Poll the connection until str0m returns its next deadline: send what it transmits, turn its
/// events into work. This is str0m's contract after every mutation of an `Rtc`.
pub fn drain(id: ConnId, conn: &mut Conn, ctx: &mut DrainCtx<'_>) {
    // str0m never needs more than a few hundred outputs per mutation; the bound only guards the
    // router thread against a library bug turning into a livelock.
    let mut immediate = IMMEDIATE_TIMEOUTS_PER_DRAIN;
    for _ in 0..100_000 {
        match conn.rtc.poll_output() {
            Ok(Output::Timeout(t)) => {
                // str0m releases one queued packet per `handle_input(Timeout)` and asks for an
                // immediate timeout before the next: answered through the timer heap, each
                // packet of a frame cost a whole loop turn (a poll(2), and under CPU
                // starvation a scheduling delay per packet — a 10-packet frame left over
                // ten turns). Due deadlines are answered here, within a bound.
                if immediate > 0 {
                    let now = Instant::now();
                    if t <= now {
                        immediate -= 1;
                        if let Err(e) = conn.rtc.handle_input(Input::Timeout(now)) {
                            tracing::debug!("timeout handling failed: {e}");
                        }
                        continue;
                    }
                }
                ctx.timers.schedule(id, &mut conn.deadline, t);
                break;
            }
            Ok(Output::Transmit(t)) => {
                if let Some(tap) = ctx.tap {
                    tap(TapDirection::Sent, &t.contents);
                }
                conn.counters.packets_out += 1;
                conn.counters.bytes_out += t.contents.len() as u64;
                ctx.outbox.push(id, t.destination, t.contents.into());
            }
            Ok(Output::Event(event)) => on_event(id, conn, event, ctx),
            Err(e) => {
                fail(id, conn, format!("str0m: {e}"), ctx.work);
                return;
            }
        }
    }
    if !conn.rtc.is_alive() {
        fail(id, conn, "the peer connection closed".into(), ctx.work);
    }
}

fn fail(id: ConnId, conn: &mut Conn, reason: String, work: &mut VecDeque<Work>) {
    if !conn.failing {
        conn.failing = true;
        work.push_back(Work::Failed(id, reason));
    }
}

fn on_event(id: ConnId, conn: &mut Conn, event: Event, ctx: &mut DrainCtx<'_>) {
    match event {
        Event::Connected => {
            conn.connected = true;
            ctx.work.push_back(Work::Connected(id));
        }
        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
            fail(id, conn, "ICE disconnected (no consent checks from the client)".into(), ctx.work);
        }
        Event::RtpPacket(packet) if conn.is_publisher() => {
            // str0m has already unwrapped RTX (a repaired packet comes under the main SSRC and
            // its original sequence number) and emits each sequence number once.
            let Some((mid, rid)) = conn.rtc.direct_api().stream_rx(&packet.header.ssrc).map(|s| (s.mid(), s.rid()))
            else {
                return;
            };
            ctx.work.push_back(Work::Packet { from: id, mid, rid, packet: Box::new(packet), received: ctx.arrived });
        }
        Event::KeyframeRequest(req) if !conn.is_publisher() => {
            ctx.work.push_back(Work::KeyframeRequest { from: id, req });
        }
        Event::EgressBitrateEstimate(BweKind::Twcc { estimate, .. }) => {
            conn.bwe_bps = Some(estimate.as_u64());
        }
        _ => {}
    }
}

/// Datagrams waiting for the next batched send. str0m hands each one over as an owned buffer;
/// it is moved here, not copied.
#[derive(Default)]
pub struct Outbox {
    pub items: Vec<(ConnId, SocketAddr, Vec<u8>)>,
}

impl Outbox {
    pub fn push(&mut self, id: ConnId, destination: SocketAddr, data: Vec<u8>) {
        self.items.push((id, destination, data));
    }
}
