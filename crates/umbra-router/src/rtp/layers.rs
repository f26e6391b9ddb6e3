//! What the forwarder reads about a video layer from clear bytes, and what it measures of it.
//!
//! - [`vp8_tid`]: the temporal layer (TID) of a VP8 packet, from the RFC 7741 payload
//!   descriptor (`X` then `T` bit); `None` when the descriptor carries none (no temporal
//!   scalability, every frame is "layer 0").
//! - [`vp8_key_size`]: width and height from a VP8 key frame's 10-byte header (RFC 6386
//!   §9.1), clear under E2EE, so the router learns each simulcast layer's real size.
//! - [`LayerMeter`]: bitrate and frame rate per TID of one publisher layer over a window of
//!   [`WINDOW`]. Bounded: a fixed array of counters, rolled over once per window.

use std::time::{Duration, Instant};

/// Temporal layers the router distinguishes (VP8 has a 2-bit TID).
pub const MAX_TIDS: usize = 4;

/// The measuring window: long enough to average a key frame into the rate, short enough that
/// a layer the publisher paused reads as zero within a couple of seconds.
pub const WINDOW: Duration = Duration::from_secs(1);

/// Offset of the first byte after the VP8 payload descriptor and the TID, if any.
fn vp8_descriptor(p: &[u8]) -> Option<(usize, Option<u8>)> {
    let &b0 = p.first()?;
    let mut i = 1;
    let mut tid = None;
    if b0 & 0x80 != 0 {
        let &x = p.get(i)?;
        i += 1;
        if x & 0x80 != 0 {
            let &pid = p.get(i)?;
            i += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            let &t = p.get(i)?;
            if x & 0x20 != 0 {
                tid = Some(t >> 6);
            }
            i += 1;
        }
    }
    (i <= p.len()).then_some((i, tid))
}

/// The TID of a VP8 packet; `None` without the `T` bit or on a truncated descriptor.
pub fn vp8_tid(payload: &[u8]) -> Option<u8> {
    vp8_descriptor(payload).and_then(|(_, tid)| tid)
}

/// Width and height of the VP8 key frame this packet starts (`None` for anything else): frame
/// tag (3 bytes, bit 0 clear), start code 9d 01 2a, then 14-bit width and height.
pub fn vp8_key_size(payload: &[u8]) -> Option<(u32, u32)> {
    let &b0 = payload.first()?;
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return None;
    }
    let (i, _) = vp8_descriptor(payload)?;
    let f = payload.get(i..i + 10)?;
    if f[0] & 0x01 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u32::from(u16::from_le_bytes([f[6], f[7]]) & 0x3FFF);
    let h = u32::from(u16::from_le_bytes([f[8], f[9]]) & 0x3FFF);
    (w > 0 && h > 0).then_some((w, h))
}

/// The RTP timestamp offset for a route switching to a layer whose packet with timestamp
/// `new_ts` arrived at `at`: output timestamps continue from `last_out` (the last timestamp
/// sent and when its packet arrived) by the time elapsed between the two arrivals, in the
/// 90 kHz video clock, at least one tick. No packet sent yet: no offset.
pub fn switch_ts_offset(last_out: Option<(u32, Instant)>, new_ts: u32, at: Instant) -> u32 {
    let Some((out_ts, out_at)) = last_out else { return 0 };
    let ticks = (at.saturating_duration_since(out_at).as_micros() * 9 / 100).clamp(1, u128::from(u32::MAX / 2)) as u32;
    out_ts.wrapping_add(ticks).wrapping_sub(new_ts)
}

/// Rates of one layer as of the last full window.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LayerRates {
    /// Bits per second with TIDs `0..=t`, at index `t`.
    pub bps: [u64; MAX_TIDS],
    /// Frames per second with TIDs `0..=t`, at index `t`.
    pub fps: [f64; MAX_TIDS],
    /// Highest TID seen, `None` when the layer has no temporal layers (or sent nothing).
    pub top_tid: Option<u8>,
}

impl LayerRates {
    /// Bitrate with TIDs up to `cap` (all of them for `None`).
    pub fn bps_up_to(&self, cap: Option<u8>) -> u64 {
        let top = self.top_tid.unwrap_or(0);
        self.bps[usize::from(cap.unwrap_or(top).min(top))]
    }
}

#[derive(Debug, Clone)]
pub struct LayerMeter {
    start: Option<Instant>,
    bytes: [u64; MAX_TIDS],
    frames: [u32; MAX_TIDS],
    top_tid: Option<u8>,
    rates: LayerRates,
}

impl Default for LayerMeter {
    fn default() -> Self {
        LayerMeter {
            start: None,
            bytes: [0; MAX_TIDS],
            frames: [0; MAX_TIDS],
            top_tid: None,
            rates: LayerRates::default(),
        }
    }
}

impl LayerMeter {
    /// One packet of `len` payload bytes; `new_frame` on a frame's first packet.
    pub fn record(&mut self, now: Instant, len: usize, tid: Option<u8>, new_frame: bool) {
        self.roll(now);
        self.start.get_or_insert(now);
        let t = usize::from(tid.unwrap_or(0)).min(MAX_TIDS - 1);
        if let Some(tid) = tid {
            self.top_tid = Some(self.top_tid.map_or(tid, |m| m.max(tid)).min(MAX_TIDS as u8 - 1));
        }
        self.bytes[t] += len as u64;
        if new_frame {
            self.frames[t] += 1;
        }
    }

    /// Close the window once it is [`WINDOW`] old (a window in which nothing came at all closes
    /// too, so a silent layer reads zero).
    pub fn roll(&mut self, now: Instant) {
        let Some(start) = self.start else { return };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < WINDOW {
            return;
        }
        let secs = elapsed.as_secs_f64();
        let mut rates = LayerRates { top_tid: self.top_tid, ..LayerRates::default() };
        let (mut bytes, mut frames) = (0u64, 0u32);
        for t in 0..MAX_TIDS {
            bytes += self.bytes[t];
            frames += self.frames[t];
            rates.bps[t] = (bytes as f64 * 8.0 / secs) as u64;
            rates.fps[t] = f64::from(frames) / secs;
        }
        self.rates = rates;
        *self = LayerMeter { rates, start: None, ..LayerMeter::default() };
        if elapsed < 2 * WINDOW {
            self.start = Some(start + elapsed);
        }
    }

    pub fn rates(&self) -> LayerRates {
        self.rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tid_from_the_descriptor() {
        // X=1, I=1 (7-bit), L=1, T=1: TID in the top two bits of the 5th byte.
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x07, 0x80, 0x11]), Some(2));
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x07, 0x00, 0x11]), Some(0));
        // 15-bit picture id.
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x81, 0x23, 0x07, 0x40, 0x11]), Some(1));
        // K without T: a key index, no TID.
        assert_eq!(vp8_tid(&[0x90, 0x10, 0xC0, 0x11]), None);
        // No extension at all.
        assert_eq!(vp8_tid(&[0x10, 0x10]), None);
        // Truncated before the TID byte.
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x07]), None);
    }

    #[test]
    fn key_frame_size() {
        let mut p = vec![0x90, 0xE0, 0x05, 0x07, 0x00];
        // Key frame tag, start code, 320 x 180 (scale bits set, ignored).
        p.extend_from_slice(&[0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x41, 0xB4, 0x80]);
        assert_eq!(vp8_key_size(&p), Some((320, 180)));
        // A delta frame has no size.
        p[5] = 0x11;
        assert_eq!(vp8_key_size(&p), None);
        // Not the start of partition 0.
        assert_eq!(vp8_key_size(&[0x80, 0xE0]), None);
    }

    #[test]
    fn timestamps_continue_by_the_elapsed_time_across_wraps() {
        let t = Instant::now();
        assert_eq!(switch_ts_offset(None, 12345, t), 0);
        // Last sent 4000000000 (output), next layer's packet 40 ms later at input 7.
        let off = switch_ts_offset(Some((4_000_000_000, t)), 7, t + Duration::from_millis(40));
        assert_eq!(7u32.wrapping_add(off), 4_000_003_600);
        // Across the 32-bit wrap.
        let off = switch_ts_offset(Some((u32::MAX - 100, t)), 3_000_000_000, t + Duration::from_millis(10));
        assert_eq!(3_000_000_000u32.wrapping_add(off), 799);
        // The same instant (a burst): still one tick later, never equal or earlier.
        let off = switch_ts_offset(Some((500, t)), 90, t);
        assert_eq!(90u32.wrapping_add(off), 501);
    }

    #[test]
    fn meter_rates_per_tid_cumulative() {
        let t0 = Instant::now();
        let mut m = LayerMeter::default();
        // One second of 30 fps, TIDs 0,1,0,2 repeating (L1T3 pattern), 1000 bytes a frame.
        for i in 0..30u32 {
            let tid = [0, 2, 1, 2][i as usize % 4];
            m.record(t0 + Duration::from_millis(u64::from(i) * 33), 1000, Some(tid), true);
        }
        m.roll(t0 + Duration::from_millis(1000));
        let r = m.rates();
        assert_eq!(r.top_tid, Some(2));
        assert!((r.fps[2] - 30.0).abs() < 0.5, "{r:?}");
        assert!((r.fps[0] - 8.0).abs() < 0.5, "{r:?}");
        assert!((r.fps[1] - 15.0).abs() < 0.5, "{r:?}");
        assert_eq!(r.bps_up_to(None), r.bps[2]);
        assert!(r.bps[2] > 230_000 && r.bps[2] < 250_000, "{r:?}");
        assert_eq!(r.bps_up_to(Some(0)), r.bps[0]);
        // A layer that stops reads zero after the next window.
        m.roll(t0 + Duration::from_millis(2500));
        assert_eq!(m.rates().bps_up_to(None), 0);
    }
}
