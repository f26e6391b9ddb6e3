//! Which simulcast layer and temporal cap each subscriber gets, and which layers a publisher
//! must keep sending. Sans-IO: measured rates, wishes, estimates and times in; decisions out.
//!
//! # Choice ([`Chooser`])
//!
//! The wish sets the top: the smallest layer at least `max_size` in both directions, else the
//! largest; `max_frame_rate` sets a temporal cap on it (the highest TID whose cumulative frame
//! rate stays within the wish). The candidates are then, best first: the top at its cap, the
//! top at half its frame rate (one temporal layer fewer), the next smaller layer at full rate,
//! at half rate, ..., and last the smallest layer down to its base temporal layer — temporal
//! layers go before a spatial layer does, but a larger picture is never thinned below half its
//! frame rate while a smaller one could still move (7.5 fps at 960 px freezes where 15 fps at
//! 480 px flows). The choice is the best candidate whose measured bitrate fits [`HEADROOM`] of
//! the subscriber's bandwidth estimate (the last one when none fits: the overload rule
//! protects the subscriber from there); the headroom lets a queue that built up while the
//! estimate fell drain instead of persisting. A layer that sends nothing right now (paused at
//! the publisher) is costed at four times the layer below it.
//!
//! Down-switches are immediate. A simulcast subscriber moves to another layer only at that
//! layer's key frame; until it comes, a down-switch for bandwidth sends of the current layer
//! only what the estimate carries ([`interim`]): its lower temporal layers, or nothing. A
//! link that cannot carry the current layer only queues it, and the new layer's key frame
//! would wait behind that queue (behind a 400 kb/s link with a 40-packet FIFO, up to 1.15 s).
//! A down-switch for the wish keeps the current layer whole: the link is fine.
//!
//! An up-switch that bandwidth held back happens only once the
//! estimate has covered the better candidate's bitrate plus [`UP_MARGIN`] for [`UP_HOLD`];
//! an up-switch because the wish grew is immediate.
//!
//! # Dynacast ([`Dynacast`])
//!
//! A layer is wanted while some subscriber receives or targets it, and for [`UNUSED_HOLD`]
//! after that (a subscriber bouncing between layers must not make the publisher stop and
//! restart an encoder each time). Until a subscriber ever existed nothing is reported (every
//! layer flows). A new set is reported at most once per [`REPORT_EVERY`] when layers leave
//! it; a layer that joins it is reported at once, since a subscriber waits for its key frame.

use std::time::{Duration, Instant};

use crate::handle::VideoWish;
use crate::rtp::layers::LayerRates;

pub const UP_HOLD: Duration = Duration::from_millis(1500);
pub const UP_MARGIN: f64 = 0.15;
/// The share of the bandwidth estimate the chosen layer may use.
pub const HEADROOM: f64 = 0.85;
pub const UNUSED_HOLD: Duration = Duration::from_secs(2);
pub const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What the router knows of one layer of a publisher's video track.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerInfo {
    pub size: Option<(u32, u32)>,
    pub rates: LayerRates,
}

/// A layer and a temporal cap (`None`: every temporal layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub layer: usize,
    pub tid_cap: Option<u8>,
}

/// Sizes of `n` layers from the declared size of the largest, each half the next.
pub fn halving_sizes(largest: Option<(u32, u32)>, n: usize) -> Vec<Option<(u32, u32)>> {
    (0..n).map(|i| largest.map(|(w, h)| (w >> (n - 1 - i), h >> (n - 1 - i)))).collect()
}

/// The layer the wish allows at best.
pub fn wished_layer(layers: &[LayerInfo], max_size: Option<(u32, u32)>) -> usize {
    let top = layers.len().saturating_sub(1);
    let Some((mw, mh)) = max_size else { return top };
    layers.iter().position(|l| l.size.is_some_and(|(w, h)| w >= mw && h >= mh)).unwrap_or(top)
}

/// The temporal cap that keeps a layer within `max_fps` (`None`: no cap needed, or the layer
/// has no temporal layers to drop).
pub fn fps_cap(rates: &LayerRates, max_fps: Option<u32>) -> Option<u8> {
    let max = f64::from(max_fps?);
    let top = rates.top_tid?;
    // 10 % slack: a 30 fps camera measures 29.7–30.3 fps.
    if rates.fps[usize::from(top)] <= max * 1.1 {
        return None;
    }
    (0..top).rev().find(|&t| rates.fps[usize::from(t)] <= max * 1.1).or(Some(0))
}

/// Candidates best first, see the module doc.
fn candidates(layers: &[LayerInfo], wish: &VideoWish) -> Vec<Pick> {
    let top = wished_layer(layers, wish.max_size);
    let mut out = Vec::new();
    for layer in (0..=top).rev() {
        let rates = &layers[layer].rates;
        let cap = fps_cap(rates, wish.max_frame_rate);
        out.push(Pick { layer, tid_cap: cap });
        let from = cap.or(rates.top_tid).unwrap_or(0);
        // Only the smallest layer goes below half rate (see the module doc).
        let lowest = if layer == 0 { 0 } else { from.saturating_sub(1) };
        for t in (lowest..from).rev() {
            out.push(Pick { layer, tid_cap: Some(t) });
        }
    }
    out
}

/// Bitrate of a candidate. A silent layer (paused at the publisher) is costed from the nearest
/// layer below that sends, at four times its bitrate per step (twice the width and height),
/// else from the nearest one above, at a quarter per step; with no layer sending it costs 0.
pub fn cost(layers: &[LayerInfo], pick: Pick) -> u64 {
    let at = |layer: usize| layers[layer].rates.bps_up_to(pick.tid_cap);
    let bps = at(pick.layer);
    if bps > 0 {
        return bps;
    }
    if let Some(below) = (0..pick.layer).rev().find(|&l| at(l) > 0) {
        return at(below).saturating_mul(4u64.saturating_pow((pick.layer - below) as u32));
    }
    match (pick.layer + 1..layers.len()).find(|&l| at(l) > 0) {
        Some(above) => at(above) >> (2 * (above - pick.layer)),
        None => 0,
    }
}

/// What of the current simulcast layer still goes out while the route waits for the key
/// frame of the lower layer it is switching to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Interim {
    /// All of it, at its cap (no switch pending, or a switch the estimate does not force).
    #[default]
    Whole,
    /// Only temporal layers up to this one.
    Cap(u8),
    /// Nothing: its frames are dropped (decoding resumes at a key frame).
    Nothing,
}

/// The interim for a route forwarding `current` (at `current_cap`) whose target is `pick`:
/// a pick of a lower layer while the current one costs more than the estimate `bwe_bps`
/// keeps the highest temporal cap of the current layer that fits the estimate, else nothing.
/// The full estimate, not [`HEADROOM`]: this lasts one key frame's wait.
pub fn interim(
    layers: &[LayerInfo],
    current: Option<usize>,
    current_cap: Option<u8>,
    pick: Option<Pick>,
    bwe_bps: Option<u64>,
) -> Interim {
    let (Some(c), Some(p), Some(bwe)) = (current, pick, bwe_bps) else {
        return Interim::Whole;
    };
    if p.layer >= c || c >= layers.len() {
        return Interim::Whole;
    }
    let fits = |cap: Option<u8>| cost(layers, Pick { layer: c, tid_cap: cap }) <= bwe;
    if fits(current_cap) {
        return Interim::Whole;
    }
    let from = current_cap.or(layers[c].rates.top_tid).unwrap_or(0);
    match (0..from).rev().find(|&t| fits(Some(t))) {
        Some(t) => Interim::Cap(t),
        None => Interim::Nothing,
    }
}

#[derive(Debug, Default, Clone)]
pub struct Chooser {
    /// The last choice was below what the wish allows, for bandwidth.
    limited: bool,
    /// Since when a better candidate has fitted the estimate with the margin.
    better_since: Option<(Pick, Instant)>,
}

/// One decision: the pick (`None`: paused), and the bitrate worth probing for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub pick: Option<Pick>,
    pub probe_bps: Option<u64>,
}

impl Chooser {
    /// `current`: what the subscriber was last given. `bwe_bps`: its estimate, `None` when
    /// the router does not estimate (then bandwidth never limits).
    pub fn choose(
        &mut self,
        layers: &[LayerInfo],
        wish: &VideoWish,
        bwe_bps: Option<u64>,
        current: Option<Pick>,
        now: Instant,
    ) -> Decision {
        if !wish.video || layers.is_empty() {
            self.limited = false;
            self.better_since = None;
            return Decision { pick: None, probe_bps: None };
        }
        let list = candidates(layers, wish);
        let fits = |p: Pick, margin: f64| {
            bwe_bps.is_none_or(|b| cost(layers, p) as f64 * (1.0 + margin) <= b as f64 * HEADROOM)
        };
        let best = list.iter().position(|&p| fits(p, 0.0)).unwrap_or(list.len() - 1);
        let current_rank = current.and_then(|c| list.iter().position(|&p| p == c));
        let rank = match current_rank {
            // Better than now, and now was held down by bandwidth: only after the hold.
            Some(cur) if best < cur && self.limited => {
                let better = list[best];
                if !fits(better, UP_MARGIN) {
                    self.better_since = None;
                    cur
                } else {
                    let since = match self.better_since {
                        Some((p, t)) if p == better => t,
                        _ => {
                            self.better_since = Some((better, now));
                            now
                        }
                    };
                    if now.saturating_duration_since(since) >= UP_HOLD { best } else { cur }
                }
            }
            _ => best,
        };
        if rank != current_rank.unwrap_or(usize::MAX) || rank == best {
            self.better_since = None;
        }
        self.limited = rank > 0;
        // Below the top, what the top candidate (the wish's best) needs, so str0m's BWE probes
        // as far as the link allows in one go and the up-switch goes to the best candidate that
        // fits after one hold; probing only for the next candidate up climbed one candidate per
        // hold (up to four steps from the smallest layer: 9 s back to the top in a CI run of
        // the browser test `shaped-link`, whose limit is 10 s). At the top `None` (the engine
        // then lets BWE probe up to its configured desired bitrate, room for a wish that grows).
        let probe_bps = (rank > 0)
            .then(|| list[0])
            // What the estimate must reach for the up-switch (`fits(better, UP_MARGIN)`).
            .map(|top| (cost(layers, top) as f64 * (1.0 + UP_MARGIN) / HEADROOM).round() as u64)
            .filter(|&b| b > 0);
        Decision { pick: Some(list[rank]), probe_bps }
    }
}

#[derive(Debug, Default, Clone)]
pub struct Dynacast {
    last_used: Vec<Option<Instant>>,
    reported: Option<Vec<usize>>,
    last_report: Option<Instant>,
}

impl Dynacast {
    /// `used[i]`: some subscriber receives or targets layer `i` now; `any_subscriber`: the
    /// track has subscribers at all. Returns the wanted layers when they are to be reported.
    pub fn update(&mut self, used: &[bool], any_subscriber: bool, now: Instant) -> Option<Vec<usize>> {
        self.last_used.resize(used.len(), None);
        for (i, &u) in used.iter().enumerate() {
            if u {
                self.last_used[i] = Some(now);
            }
        }
        if self.reported.is_none() && !any_subscriber {
            return None;
        }
        let wanted: Vec<usize> = (0..used.len())
            .filter(|&i| self.last_used[i].is_some_and(|t| now.saturating_duration_since(t) < UNUSED_HOLD))
            .collect();
        let reported = self.reported.as_deref();
        if reported == Some(&wanted[..]) {
            return None;
        }
        let joined = wanted.iter().any(|w| reported.is_none_or(|r| !r.contains(w)));
        let calm = self.last_report.is_none_or(|t| now.saturating_duration_since(t) >= REPORT_EVERY);
        if !joined && !calm {
            return None;
        }
        self.reported = Some(wanted.clone());
        self.last_report = Some(now);
        Some(wanted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(size: (u32, u32), bps: [u64; 3], fps: [f64; 3]) -> LayerInfo {
        let mut rates = LayerRates { top_tid: Some(2), ..Default::default() };
        rates.bps[..3].copy_from_slice(&bps);
        rates.fps[..3].copy_from_slice(&fps);
        LayerInfo { size: Some(size), rates }
    }

    fn three() -> Vec<LayerInfo> {
        vec![
            layer((320, 180), [60_000, 90_000, 120_000], [7.5, 15.0, 30.0]),
            layer((640, 360), [200_000, 300_000, 400_000], [7.5, 15.0, 30.0]),
            layer((1280, 720), [700_000, 1_000_000, 1_500_000], [7.5, 15.0, 30.0]),
        ]
    }

    fn wish(max_size: Option<(u32, u32)>, max_frame_rate: Option<u32>) -> VideoWish {
        VideoWish { video: true, max_size, max_frame_rate }
    }

    #[test]
    fn a_paused_layer_is_costed_from_its_neighbours() {
        let mut l = three();
        l[0].rates = LayerRates::default();
        l[1].rates = LayerRates::default();
        // Only the top layer sends: the others are a quarter per step of it.
        let all = |layer| Pick { layer, tid_cap: None };
        assert_eq!(cost(&l, all(1)), 1_500_000 / 4);
        assert_eq!(cost(&l, all(0)), 1_500_000 / 16);
        // Only the bottom one sends: four times per step.
        let mut l = three();
        l[1].rates = LayerRates::default();
        l[2].rates = LayerRates::default();
        assert_eq!(cost(&l, all(2)), 120_000 * 16);
        l[0].rates = LayerRates::default();
        assert_eq!(cost(&l, all(2)), 0);
    }

    #[test]
    fn a_forced_down_switch_sends_only_what_the_estimate_carries_until_the_key_frame() {
        let l = three();
        let to = |layer| Some(Pick { layer, tid_cap: None });
        // The top layer (1.5 Mbps) at 1.2 Mbps, switching to the middle one: its TID 0..1
        // (1 Mbps) fit, TID 2 does not.
        assert_eq!(interim(&l, Some(2), None, to(1), Some(1_200_000)), Interim::Cap(1));
        // At 800 kbps only the base layer (700 kbps) fits; at 400 kbps nothing does.
        assert_eq!(interim(&l, Some(2), None, to(1), Some(800_000)), Interim::Cap(0));
        assert_eq!(interim(&l, Some(2), None, to(0), Some(400_000)), Interim::Nothing);
        // An existing cap is never raised: capped at TID 0 and that no longer fits.
        assert_eq!(interim(&l, Some(2), Some(0), to(1), Some(600_000)), Interim::Nothing);
        // The current layer fits (a switch for the wish), no switch down, or no estimate.
        assert_eq!(interim(&l, Some(2), None, to(1), Some(2_000_000)), Interim::Whole);
        assert_eq!(interim(&l, Some(1), None, to(2), Some(100_000)), Interim::Whole);
        assert_eq!(interim(&l, Some(1), None, to(1), Some(100_000)), Interim::Whole);
        assert_eq!(interim(&l, Some(2), None, to(1), None), Interim::Whole);
        assert_eq!(interim(&l, None, None, to(1), Some(100_000)), Interim::Whole);
        // A layer without temporal layers is all or nothing.
        let mut plain = three();
        plain[2].rates.top_tid = None;
        plain[2].rates.bps.fill(0);
        plain[2].rates.bps[0] = 1_500_000;
        assert_eq!(interim(&plain, Some(2), None, to(1), Some(1_200_000)), Interim::Nothing);
    }

    #[test]
    fn halving_and_the_wished_layer() {
        assert_eq!(halving_sizes(Some((1280, 720)), 3), vec![Some((320, 180)), Some((640, 360)), Some((1280, 720))]);
        let l = three();
        assert_eq!(wished_layer(&l, None), 2);
        assert_eq!(wished_layer(&l, Some((320, 180))), 0);
        assert_eq!(wished_layer(&l, Some((400, 200))), 1);
        assert_eq!(wished_layer(&l, Some((1920, 1080))), 2);
    }

    #[test]
    fn frame_rate_caps_map_to_tids() {
        let r = three()[0].rates;
        assert_eq!(fps_cap(&r, None), None);
        assert_eq!(fps_cap(&r, Some(30)), None);
        assert_eq!(fps_cap(&r, Some(15)), Some(1));
        assert_eq!(fps_cap(&r, Some(10)), Some(0));
        assert_eq!(fps_cap(&r, Some(1)), Some(0));
    }

    #[test]
    fn bandwidth_drops_temporal_layers_before_a_spatial_layer() {
        let l = three();
        let mut c = Chooser::default();
        let t = Instant::now();
        let w = wish(None, None);
        let d = c.choose(&l, &w, Some(5_000_000), None, t);
        assert_eq!(d.pick, Some(Pick { layer: 2, tid_cap: None }));
        assert_eq!(d.probe_bps, None);
        // 1.2 Mbps (1.02 Mbps with the headroom): the top layer without TID 2; the probe is what
        // the full top layer needs with the up-switch margin.
        let d = c.choose(&l, &w, Some(1_200_000), d.pick, t);
        assert_eq!(d.pick, Some(Pick { layer: 2, tid_cap: Some(1) }));
        assert_eq!(d.probe_bps, Some(2_029_412));
        // 900 kbps: the top layer's base layer (700 kbps) would fit, but 7.5 fps of a large
        // picture is not offered while the middle layer moves at full rate.
        let d = c.choose(&l, &w, Some(900_000), d.pick, t);
        assert_eq!(d.pick, Some(Pick { layer: 1, tid_cap: None }));
        // 500 kbps: the middle layer, full rate.
        let d = c.choose(&l, &w, Some(500_000), d.pick, t);
        assert_eq!(d.pick, Some(Pick { layer: 1, tid_cap: None }));
        // Nothing fits: the smallest, base layer only.
        let d = c.choose(&l, &w, Some(10_000), d.pick, t);
        assert_eq!(d.pick, Some(Pick { layer: 0, tid_cap: Some(0) }));
    }

    #[test]
    fn up_switches_wait_for_the_estimate_to_hold_down_switches_do_not() {
        let l = three();
        let mut c = Chooser::default();
        let t0 = Instant::now();
        let w = wish(None, None);
        let mut pick = c.choose(&l, &w, Some(500_000), None, t0).pick;
        assert_eq!(pick, Some(Pick { layer: 1, tid_cap: None }));
        // The estimate rises to 2.1 Mbps: held for UP_HOLD first.
        for ms in (0..1500).step_by(100) {
            let d = c.choose(&l, &w, Some(2_100_000), pick, t0 + Duration::from_millis(ms));
            assert_eq!(d.pick, pick, "at {ms} ms");
        }
        pick = c.choose(&l, &w, Some(2_100_000), pick, t0 + Duration::from_millis(1500)).pick;
        assert_eq!(pick, Some(Pick { layer: 2, tid_cap: None }));
        // Falls: at once.
        pick = c.choose(&l, &w, Some(400_000), pick, t0 + Duration::from_millis(1600)).pick;
        assert_eq!(pick, Some(Pick { layer: 1, tid_cap: Some(1) }));
        // A dip in the middle of the hold restarts it.
        let t1 = t0 + Duration::from_secs(10);
        c.choose(&l, &w, Some(2_100_000), pick, t1);
        c.choose(&l, &w, Some(250_000), pick, t1 + Duration::from_millis(1000));
        let d = c.choose(&l, &w, Some(2_100_000), pick, t1 + Duration::from_millis(1600));
        assert_eq!(d.pick, pick);
    }

    #[test]
    fn wishes_apply_at_once() {
        let l = three();
        let mut c = Chooser::default();
        let t = Instant::now();
        let pick = c.choose(&l, &wish(Some((320, 180)), None), Some(5_000_000), None, t).pick;
        assert_eq!(pick, Some(Pick { layer: 0, tid_cap: None }));
        let pick = c.choose(&l, &wish(None, Some(15)), Some(5_000_000), pick, t).pick;
        assert_eq!(pick, Some(Pick { layer: 2, tid_cap: Some(1) }));
        let off = VideoWish { video: false, ..wish(None, None) };
        assert_eq!(c.choose(&l, &off, Some(5_000_000), pick, t).pick, None);
        // A silent layer (paused at the publisher) is costed from the one below.
        let mut l = three();
        l[2].rates = LayerRates::default();
        assert_eq!(cost(&l, Pick { layer: 2, tid_cap: None }), 1_600_000);
    }

    #[test]
    fn dynacast_holds_unused_layers_and_spaces_reports() {
        let mut d = Dynacast::default();
        let t = Instant::now();
        let ms = |m: u64| t + Duration::from_millis(m);
        // No subscriber yet: nothing said, everything flows.
        assert_eq!(d.update(&[false, false, false], false, t), None);
        assert_eq!(d.update(&[false, false, true], true, ms(100)), Some(vec![2]));
        assert_eq!(d.update(&[false, false, true], true, ms(200)), None);
        // The subscriber moves to layer 0: joins at once, 2 leaves only after the hold.
        assert_eq!(d.update(&[true, false, false], true, ms(300)), Some(vec![0, 2]));
        assert_eq!(d.update(&[true, false, false], true, ms(1500)), None);
        assert_eq!(d.update(&[true, false, false], true, ms(2300)), Some(vec![0]));
        // Nobody watches any more.
        assert_eq!(d.update(&[false, false, false], false, ms(2400)), None);
        assert_eq!(d.update(&[false, false, false], false, ms(4400)), Some(vec![]));
    }
}
