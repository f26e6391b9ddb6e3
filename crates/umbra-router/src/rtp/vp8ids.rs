//! VP8 picture ids and TL0PICIDX on one subscriber stream across simulcast layer switches.
//!
//! Each layer is its own VP8 stream with its own picture id and TL0PICIDX counters. At a switch
//! the router chooses offsets so the new layer's first frame follows the last one sent (picture
//! id + 1, TL0PICIDX + 1: the switch is at a key frame, TID 0), and adds them to every packet of
//! the layer from then on, through str0m's fixed-size descriptor patch (`RtpWrite::vp8_patch`,
//! applied when the packet is serialized, retransmissions included; the shared payload is not
//! copied). Before the first switch the offsets are zero and nothing is patched.
//!
//! Frames dropped by a temporal cap still leave picture id gaps: the receiver reads what a
//! frame depends on from TID and TL0PICIDX, which stay consistent.

use str0m::rtp::{Vp8Descriptor, Vp8Patch, Vp8PatchError};

/// Picture ids are 15 bits (7 in the short form; 2^15 is a multiple of 2^7, so the offsets
/// work for both).
const PID_MASK: u16 = 0x7FFF;

#[derive(Debug, Default, Clone)]
pub struct Vp8Ids {
    pid_offset: u16,
    tl0_offset: u8,
    /// Output picture id and TL0PICIDX of the newest packet sent.
    last: Option<(Option<u16>, Option<u8>)>,
}

impl Vp8Ids {
    /// The route switches layers; `payload` is the first packet of the new one.
    pub fn rebase(&mut self, payload: &[u8]) {
        let (Some((last_pid, last_tl0)), Ok(d)) = (self.last, Vp8Descriptor::parse(payload)) else {
            return;
        };
        if let (Some(l), Some(p)) = (last_pid, d.picture_id()) {
            self.pid_offset = l.wrapping_add(1).wrapping_sub(p) & PID_MASK;
        }
        if let (Some(l), Some(t)) = (last_tl0, d.tl0_pic_idx()) {
            self.tl0_offset = l.wrapping_add(1).wrapping_sub(t);
        }
    }

    /// The patch for one packet going out (`None`: sent as it is). `newest`: the packet is
    /// above everything sent, its ids become the last ones.
    pub fn patch(&mut self, payload: &[u8], newest: bool) -> Option<Vp8Patch> {
        let d = Vp8Descriptor::parse(payload).ok()?;
        let pid = d.picture_id().map(|p| p.wrapping_add(self.pid_offset) & PID_MASK);
        let tl0 = d.tl0_pic_idx().map(|t| t.wrapping_add(self.tl0_offset));
        if newest {
            self.last = Some((pid, tl0));
        }
        if self.pid_offset == 0 && self.tl0_offset == 0 {
            return None;
        }
        let build = |pid: Option<u16>| {
            let mut b = d.patch();
            if let Some(p) = pid {
                b = b.picture_id(p);
            }
            if let Some(t) = tl0 {
                b = b.tl0_pic_idx(t);
            }
            b.build()
        };
        match build(pid) {
            Ok(p) => Some(p),
            // The short (7-bit) form.
            Err(Vp8PatchError::PictureIdTooLarge) => build(pid.map(|p| p & 0x7F)).ok(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Descriptor with a 15-bit picture id, TL0PICIDX and TID 0, then a frame tag.
    fn packet(pid: u16, tl0: u8) -> Vec<u8> {
        vec![0x90, 0xE0, 0x80 | (pid >> 8) as u8, pid as u8, tl0, 0x20, 0x10, 0, 0, 0]
    }

    #[test]
    fn nothing_is_patched_before_a_switch() {
        let mut ids = Vp8Ids::default();
        assert!(ids.patch(&packet(300, 7), true).is_none());
        assert_eq!(ids.last, Some((Some(300), Some(7))));
    }

    #[test]
    fn a_switch_continues_the_ids_and_wraps() {
        let mut ids = Vp8Ids::default();
        ids.patch(&packet(0x7FFE, 255), true);
        // The new layer starts at picture id 10, TL0PICIDX 3.
        ids.rebase(&packet(10, 3));
        assert_eq!((ids.pid_offset.wrapping_add(10) & PID_MASK, ids.tl0_offset.wrapping_add(3)), (0x7FFF, 0));
        assert!(ids.patch(&packet(10, 3), true).is_some());
        assert_eq!(ids.last, Some((Some(0x7FFF), Some(0))));
        ids.patch(&packet(11, 3), true);
        assert_eq!(ids.last, Some((Some(0), Some(0))), "15-bit wrap");
        // (What the patch does to the bytes is checked end to end in tests/simulcast.rs.)
        // A retransmission of an older packet is patched but does not move `last`.
        assert!(ids.patch(&packet(10, 3), false).is_some());
        assert_eq!(ids.last, Some((Some(0), Some(0))));
    }
}
