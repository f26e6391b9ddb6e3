//! Puts the frames of a file's tracks into one timestamp order before they reach the muxer.
//!
//! Matroska clusters and MP4 sample tables want time to move forward across tracks, but audio
//! and video of one stream arrive on separate paths: a video frame spread over many packets can
//! complete after audio that was captured later. Frames wait here until nothing older can still
//! arrive, which the recorder bounds by [`REORDER_WINDOW_NS`]; a frame later than that (a stall
//! longer than the window) is written at the newest position already written instead of
//! breaking the file.
//!
//! Invariant: [`Interleaver::ready`] yields frames in non-decreasing `at_ns`, and holds at most
//! one window's worth of media (bounded memory per file).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// How long a frame waits for older frames of another track: well above the jitter between a
/// stream's audio and video on a working path, well below what a person would notice when a
/// recording ends.
pub const REORDER_WINDOW_NS: u64 = 500_000_000;

/// Which track of the file a frame belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TrackKind {
    Video,
    Audio,
}

/// A frame on the file's time axis.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimedFrame {
    pub at_ns: u64,
    /// Ties keep arrival order.
    pub seq: u64,
    pub track: TrackKind,
    pub keyframe: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Default)]
pub struct Interleaver {
    heap: BinaryHeap<Reverse<TimedFrame>>,
    newest_ns: u64,
    written_ns: u64,
    next_seq: u64,
    /// Frames that arrived later than the window and were moved forward.
    pub late_frames: u64,
}

impl Interleaver {
    pub fn push(&mut self, at_ns: u64, track: TrackKind, keyframe: bool, data: Vec<u8>) {
        let at_ns = if at_ns < self.written_ns {
            self.late_frames += 1;
            self.written_ns
        } else {
            at_ns
        };
        self.newest_ns = self.newest_ns.max(at_ns);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(TimedFrame { at_ns, seq, track, keyframe, data }));
    }

    /// The frames that nothing older can precede any more.
    pub fn ready(&mut self) -> Vec<TimedFrame> {
        let mut out = Vec::new();
        let Some(horizon) = self.newest_ns.checked_sub(REORDER_WINDOW_NS) else { return out };
        while self.heap.peek().is_some_and(|Reverse(f)| f.at_ns <= horizon) {
            if let Some(Reverse(f)) = self.heap.pop() {
                self.written_ns = f.at_ns;
                out.push(f);
            }
        }
        out
    }

    /// Everything still held, in order (the file is ending).
    pub fn drain(&mut self) -> Vec<TimedFrame> {
        let mut out = Vec::with_capacity(self.heap.len());
        while let Some(Reverse(f)) = self.heap.pop() {
            self.written_ns = f.at_ns;
            out.push(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn frames_leave_in_time_order_once_the_window_has_passed() {
        let mut il = Interleaver::default();
        il.push(40 * MS, TrackKind::Video, true, vec![1]);
        il.push(20 * MS, TrackKind::Audio, false, vec![2]);
        il.push(0, TrackKind::Audio, false, vec![3]);
        assert!(il.ready().is_empty(), "nothing is older than the window yet");
        il.push(530 * MS, TrackKind::Audio, false, vec![4]);
        let out: Vec<u64> = il.ready().iter().map(|f| f.at_ns).collect();
        assert_eq!(out, vec![0, 20 * MS]);
        let rest: Vec<u64> = il.drain().iter().map(|f| f.at_ns).collect();
        assert_eq!(rest, vec![40 * MS, 530 * MS]);
    }

    #[test]
    fn a_frame_later_than_the_window_moves_forward_instead_of_back() {
        let mut il = Interleaver::default();
        il.push(1000 * MS, TrackKind::Audio, false, vec![]);
        il.push(1600 * MS, TrackKind::Audio, false, vec![]);
        assert_eq!(il.ready().len(), 1);
        il.push(10 * MS, TrackKind::Video, true, vec![]);
        assert_eq!(il.late_frames, 1);
        let all: Vec<u64> = il.drain().iter().map(|f| f.at_ns).collect();
        assert_eq!(all, vec![1000 * MS, 1600 * MS]);
    }

    #[test]
    fn equal_times_keep_arrival_order() {
        let mut il = Interleaver::default();
        il.push(5, TrackKind::Video, true, vec![1]);
        il.push(5, TrackKind::Audio, false, vec![2]);
        let d: Vec<u8> = il.drain().iter().map(|f| f.data[0]).collect();
        assert_eq!(d, vec![1, 2]);
    }
}
