//! The engine side of layer choice (`crate::layers`), dynacast and the active speaker: every
//! [`LAYERS_EVERY`](super::LAYERS_EVERY), and at once when a subscriber joins or changes its
//! wish, each publisher's video layers are measured, each subscriber's target layer chosen,
//! `LayerChanged` / `LayersWanted` / `ActiveSpeaker` reported when they change.
//!
//! Bound: per tick, one pass over publishers, their subscribers and their layers (at most 3
//! per track); no allocation per packet. A subscriber's BWE desired bitrate is set to the
//! bitrate of the best candidate its wish allows (plus the up-switch margin), so str0m probes
//! for what the up-switch to it needs; at the top it is the configured `bwe_desired_bps`
//! again (a desired bitrate of just the top layer would hold the estimate there, and a wish
//! that grows would then start a layer low).

use super::*;
use crate::layers::{Interim, LayerInfo, halving_sizes, interim};

type Report = (Option<String>, Option<u8>, bool);

/// One video track of a publisher as a layer choice sees it.
struct TrackLayers {
    mid: Mid,
    /// What is known of its layers (SVC: each with the layers below it, `stack_spatial`).
    infos: Vec<LayerInfo>,
    rids: Vec<Option<String>>,
    svc: bool,
}

/// The probe target changes str0m's BWE only when it moves by more than this fraction.
const PROBE_STEP: f64 = 0.1;

impl Engine {
    pub(super) fn layers_tick(&mut self, now: Instant) {
        let publishers: Vec<ConnId> =
            self.conns.iter().filter(|(_, c)| matches!(c.role, Role::Publisher(_))).map(|(id, _)| *id).collect();
        for p in publishers {
            self.choose_layers(p, now);
        }
        let mut speakers = Vec::new();
        for d in self.speakers.values_mut() {
            if let Some(id) = d.tick(now) {
                speakers.push(id);
            }
        }
        for id in speakers {
            if let Some(label) = self.labels.get(&id) {
                let event = RouterEvent {
                    session_id: label.session_id.clone(),
                    connection_id: label.connection_id.clone(),
                    target: label.target.clone(),
                    kind: RouterEventKind::ActiveSpeaker,
                };
                self.emit(event);
            }
        }
        self.speakers.retain(|_, d| !d.is_empty());
        self.run_work(now);
    }

    /// Choose for every subscriber of one publisher, then report what changed.
    pub(super) fn choose_layers(&mut self, publisher: ConnId, now: Instant) {
        let Some(pc) = self.conns.get_mut(&publisher) else {
            return;
        };
        let Role::Publisher(p) = &mut pc.role else {
            return;
        };
        let video_size = p.video_size;
        let tracks: Vec<TrackLayers> = p
            .tracks
            .iter_mut()
            .filter(|t| t.kind == MediaKind::Video)
            .map(|t| {
                let sizes = halving_sizes(video_size, t.layers.len());
                let mut infos: Vec<LayerInfo> = t
                    .layers
                    .iter_mut()
                    .zip(sizes)
                    .map(|(l, declared)| {
                        l.meter.roll(now);
                        LayerInfo { size: l.size.or(declared), rates: l.meter.rates() }
                    })
                    .collect();
                if t.svc {
                    stack_spatial(&mut infos);
                }
                let rids = t.layers.iter().map(|l| l.rid.map(|r| r.to_string())).collect();
                TrackLayers { mid: t.mid, infos, rids, svc: t.svc }
            })
            .collect();
        if tracks.is_empty() {
            return;
        }
        let subscribers = p.subscribers.clone();
        let mut used: Vec<Vec<bool>> = tracks.iter().map(|t| vec![false; t.infos.len()]).collect();
        let mut keyframes: Vec<(Mid, usize)> = Vec::new();
        let mut events: Vec<RouterEvent> = Vec::new();
        for &sid in &subscribers {
            let Some(mut sc) = self.conns.remove(&sid) else {
                continue;
            };
            self.current = Some(sid);
            let bwe = sc.estimate_bps();
            let connected = sc.connected;
            let mut probe: Option<u64> = None;
            let mut probe_changed = false;
            if let Role::Subscriber(s) = &mut sc.role {
                let wish = s.wish;
                for (n, TrackLayers { mid, infos, rids, svc }) in tracks.iter().enumerate() {
                    let Some(route) = s.routes.iter_mut().find(|r| r.pub_mid == *mid) else {
                        continue;
                    };
                    let sel = &mut route.sel;
                    let d = sel.chooser.choose(infos, &wish, bwe, sel.target, now);
                    sel.target = d.pick;
                    // SVC goes down at the next picture: no interim to bridge.
                    let interim =
                        if *svc { Interim::Whole } else { interim(infos, sel.current, sel.tid_cap, d.pick, bwe) };
                    // Once frames were dropped, the current layer decodes again only from a
                    // key frame: stay dropping until the switch, unless the pick returns to it.
                    let returned = d.pick.map(|p| p.layer) == sel.current;
                    if sel.interim == Interim::Nothing && interim != Interim::Nothing {
                        if returned {
                            route.waiting_keyframe = true;
                            sel.interim = interim;
                        }
                    } else {
                        sel.interim = interim;
                    }
                    if let Some(pick) = d.pick {
                        used[n][pick.layer] = true;
                        if let Some(c) = sel.current {
                            used[n][c] = true;
                        }
                        // SVC goes down at any picture; only up (or a start) needs a key one.
                        let needs_key = !svc || sel.current.is_none_or(|c| pick.layer > c);
                        if sel.current != Some(pick.layer) && connected && needs_key {
                            keyframes.push((*mid, pick.layer));
                        }
                    }
                    if d.probe_bps != sel.probe_bps {
                        let moved = match (d.probe_bps, sel.probe_bps) {
                            (Some(a), Some(b)) => (a as f64 - b as f64).abs() > PROBE_STEP * b as f64,
                            _ => true,
                        };
                        if moved {
                            sel.probe_bps = d.probe_bps;
                            probe_changed = true;
                        }
                    }
                    probe = probe.max(sel.probe_bps);
                    let report = layer_report(&route.sel, rids);
                    if report != s.reported.clone().unwrap_or((None, None, false)) {
                        s.reported = Some(report.clone());
                        events.push(layer_event(&sc.session_id, &sc.connection_id, &s.subscription_id, report));
                    }
                }
            }
            if probe_changed && bwe.is_some() {
                let bps = probe.unwrap_or(self.settings.bwe_desired_bps);
                sc.rtc.bwe().set_bitrate(Bitrate::ZERO, Bitrate::bps(bps));
                let mut ctx = self.ctx(now);
                drain(sid, &mut sc, &mut ctx);
            }
            self.conns.insert(sid, sc);
            self.current = None;
        }
        for e in events {
            self.emit(e);
        }
        // Dynacast, for simulcast tracks.
        let mut wanted_events = Vec::new();
        if let Some(pc) = self.conns.get_mut(&publisher)
            && let Role::Publisher(p) = &mut pc.role
        {
            for (TrackLayers { mid, rids, .. }, used) in tracks.iter().zip(&used) {
                let Some(track) = p.tracks.iter_mut().find(|t| t.mid == *mid) else {
                    continue;
                };
                if rids.iter().all(Option::is_none) {
                    continue;
                }
                if let Some(wanted) = track.dynacast.update(used, !subscribers.is_empty(), now) {
                    let rids: Vec<String> = wanted.iter().filter_map(|&i| rids[i].clone()).collect();
                    wanted_events.push(RouterEvent {
                        session_id: pc.session_id.clone(),
                        connection_id: pc.connection_id.clone(),
                        target: Target::Publisher { stream_id: p.stream_id.clone() },
                        kind: RouterEventKind::LayersWanted(rids),
                    });
                }
            }
        }
        for e in wanted_events {
            self.emit(e);
        }
        for (mid, layer) in keyframes {
            if self.keyframe_due(publisher, mid, layer, now) {
                self.request_keyframe(publisher, mid, layer, KeyframeRequestKind::Pli, false, now);
            }
        }
    }

    /// No key frame was asked for on this layer within `keyframe_request_interval`.
    pub(super) fn keyframe_due(&self, publisher: ConnId, mid: Mid, layer: usize, now: Instant) -> bool {
        let Some(Role::Publisher(p)) = self.conns.get(&publisher).map(|c| &c.role) else {
            return false;
        };
        p.tracks.iter().find(|t| t.mid == mid).and_then(|t| t.layers.get(t.request_layer(layer))).is_some_and(|l| {
            l.last_keyframe_request
                .is_none_or(|t| now.saturating_duration_since(t) >= self.settings.keyframe_request_interval)
        })
    }

    /// Report a subscriber's layer if it changed (after a switch in the forwarding path).
    pub(super) fn report_layer(&mut self, sid: ConnId) {
        let Some(sc) = self.conns.get(&sid) else { return };
        let Role::Subscriber(s) = &sc.role else { return };
        let Some(Role::Publisher(p)) = self.conns.get(&s.publisher).map(|c| &c.role) else {
            return;
        };
        let mut events = Vec::new();
        for route in s.routes.iter().filter(|r| r.kind == MediaKind::Video) {
            let Some(track) = p.tracks.iter().find(|t| t.mid == route.pub_mid) else {
                continue;
            };
            let rids: Vec<Option<String>> = track.layers.iter().map(|l| l.rid.map(|r| r.to_string())).collect();
            events.push(layer_report(&route.sel, &rids));
        }
        let (session_id, connection_id, subscription_id) =
            (sc.session_id.clone(), sc.connection_id.clone(), s.subscription_id.clone());
        let Some(Role::Subscriber(s)) = self.conns.get_mut(&sid).map(|c| &mut c.role) else {
            return;
        };
        let mut out = Vec::new();
        for report in events {
            if report != s.reported.clone().unwrap_or((None, None, false)) {
                s.reported = Some(report.clone());
                out.push(layer_event(&session_id, &connection_id, &subscription_id, report));
            }
        }
        for e in out {
            self.emit(e);
        }
    }
}

/// SVC layer `k` is forwarded with every layer below it: its cost is theirs plus its own. A
/// layer that sends nothing keeps zero, so the chooser costs it as paused.
fn stack_spatial(infos: &mut [LayerInfo]) {
    for k in 1..infos.len() {
        let below = infos[k - 1].rates;
        let r = &mut infos[k].rates;
        if r.bps_up_to(None) == 0 {
            continue;
        }
        for (own, b) in r.bps.iter_mut().zip(below.bps) {
            *own += b;
        }
        r.top_tid = r.top_tid.max(below.top_tid);
    }
}

/// What a route carries: the rid of its current layer, the temporal cap in force, paused.
fn layer_report(sel: &crate::conn::Selection, rids: &[Option<String>]) -> Report {
    if sel.target.is_none() {
        return (None, None, true);
    }
    let rid = sel.current.and_then(|c| rids.get(c).cloned().flatten());
    let cap = match (sel.current, sel.target) {
        (Some(c), Some(t)) if c == t.layer => t.tid_cap,
        _ => sel.tid_cap,
    };
    (rid, cap, false)
}

fn layer_event(session_id: &str, connection_id: &str, subscription_id: &str, r: Report) -> RouterEvent {
    RouterEvent {
        session_id: session_id.to_owned(),
        connection_id: connection_id.to_owned(),
        target: Target::Subscriber { subscription_id: subscription_id.to_owned() },
        kind: RouterEventKind::LayerChanged { rid: r.0, temporal_layer: r.1, paused: r.2 },
    }
}
