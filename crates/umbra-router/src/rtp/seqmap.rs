//! Per-subscriber RTP sequence numbers. The router forwards a publisher's packets but may drop
//! some for one subscriber (the overload rule, a track waiting for a key frame); that
//! subscriber must see no gap where nothing was lost, or it NACKs packets that never existed
//! and holds frames back waiting for them. It must still see the gaps of real loss (the
//! publisher's packets that have not arrived), so that a repaired packet arriving late fills
//! exactly its hole.
//!
//! So output numbers come in *segments*: within a segment `out = in + delta`, which keeps
//! real gaps as they are; a drop ends the segment, and the next packet admitted opens a new
//! one that continues right after the highest number sent. A late packet (below the highest
//! input seen) is sent with its segment's number when it belongs to the current segment, and
//! refused otherwise: its frame was, or precedes, what the drop cut off.
//!
//! A simulcast layer switch feeds the map from another publisher stream, whose numbers have
//! nothing to do with the old one's: [`SeqMap::rebase`] forgets the input side (segment and
//! highest input) and keeps the output side, so the first packet of the new layer opens a
//! segment right after the last number sent, and every packet of the old layer, or of the
//! new one from before the switch, is [`Slot::Stale`] from then on (the caller keeps the old
//! layer's packets away; the new layer's earlier numbers are below the segment start).
//!
//! Numbers are extended (64-bit): str0m derives the SRTP rollover counter from the high bits,
//! so the router owns the counter for each outgoing stream. A stream starts below 2^15 so its
//! first rollover counter is 0, as a receiver assumes.

/// Where one publisher track's packets go on one subscriber stream.
#[derive(Debug, Clone)]
pub struct SeqMap {
    /// Input number at which the current segment starts, and `out - in` within it.
    segment: Option<(u64, i64)>,
    /// One past the highest number sent.
    next_out: u64,
    /// Highest input number seen (sent or dropped).
    highest_in: Option<u64>,
}

/// What to do with one input packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Above everything seen: the caller decides to send ([`SeqMap::admit`]) or drop
    /// ([`SeqMap::drop_new`]).
    New,
    /// Below the highest seen, inside the current segment: send it with this number.
    Late(u64),
    /// Below the highest seen and before the current segment (or a duplicate): refuse.
    Stale,
}

impl SeqMap {
    /// `start` is the first output number (random per stream, below 2^15).
    pub fn new(start: u16) -> SeqMap {
        SeqMap { segment: None, next_out: u64::from(start & 0x7FFF), highest_in: None }
    }

    pub fn classify(&self, input: u64) -> Slot {
        match self.highest_in {
            Some(h) if input <= h => match self.segment {
                Some((start, delta)) if input >= start => {
                    let out = (input as i64 + delta) as u64;
                    // `out < next_out` always holds here; a repeat of a number already sent
                    // is str0m's to filter (it only emits packets it has not seen).
                    Slot::Late(out)
                }
                _ => Slot::Stale,
            },
            _ => Slot::New,
        }
    }

    /// Send a [`Slot::New`] packet: its output number.
    pub fn admit(&mut self, input: u64) -> u64 {
        self.highest_in = Some(input);
        let (_, delta) = *self.segment.get_or_insert((input, self.next_out as i64 - input as i64));
        let out = (input as i64 + delta) as u64;
        self.next_out = out + 1;
        out
    }

    /// Drop a [`Slot::New`] packet: the segment ends, the next admitted packet follows the
    /// last one sent without a gap.
    pub fn drop_new(&mut self, input: u64) {
        self.highest_in = Some(input);
        self.segment = None;
    }

    /// The input switches to another number space (a simulcast layer switch): the next
    /// [`Slot::New`] packet admitted continues the output without a gap.
    pub fn rebase(&mut self) {
        self.segment = None;
        self.highest_in = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `(input, send?)` in order; return the output numbers of the packets sent.
    fn run(m: &mut SeqMap, packets: &[(u64, bool)]) -> Vec<Option<u64>> {
        packets
            .iter()
            .map(|&(i, send)| match m.classify(i) {
                Slot::New if send => Some(m.admit(i)),
                Slot::New => {
                    m.drop_new(i);
                    None
                }
                Slot::Late(out) => Some(out),
                Slot::Stale => None,
            })
            .collect()
    }

    #[test]
    fn drops_leave_no_gap_and_real_loss_keeps_its_gap() {
        let mut m = SeqMap::new(100);
        // 1000..=1002 sent; 1003, 1004 dropped by the router; 1005 sent; 1006 lost on the
        // way (never seen); 1007 sent.
        let out = run(
            &mut m,
            &[(1000, true), (1001, true), (1002, true), (1003, false), (1004, false), (1005, true), (1007, true)],
        );
        assert_eq!(out, vec![Some(100), Some(101), Some(102), None, None, Some(103), Some(105)]);
        // 1006 repaired and arriving late fills exactly the hole.
        assert_eq!(m.classify(1006), Slot::Late(104));
        // 1004 late (its frame was dropped): refused, or it would collide with 102..
        assert_eq!(m.classify(1004), Slot::Stale);
        assert_eq!(m.classify(1008), Slot::New);
    }

    #[test]
    fn the_first_rollover_counter_is_zero_and_numbers_pass_2_16() {
        let mut m = SeqMap::new(0xFFFF);
        let first = m.admit(5);
        assert!(first < 0x8000);
        let mut last = first;
        for i in 6..70_000u64 {
            last = m.admit(i);
        }
        assert_eq!(last, first + 70_000 - 6);
        assert!(last >> 16 >= 1, "the extended number carries the rollover");
    }

    #[test]
    fn a_drop_right_at_the_start_opens_the_first_segment_later() {
        let mut m = SeqMap::new(7);
        assert_eq!(
            run(&mut m, &[(50, false), (51, false), (52, true), (53, true)]),
            vec![None, None, Some(7), Some(8)]
        );
        assert_eq!(m.classify(51), Slot::Stale);
    }

    #[test]
    fn a_rebase_continues_the_output_from_another_input_space() {
        let mut m = SeqMap::new(500);
        assert_eq!(run(&mut m, &[(9000, true), (9001, true), (9003, true)]), vec![Some(500), Some(501), Some(503)]);
        // Switch to a layer whose numbers are far lower.
        m.rebase();
        assert_eq!(m.classify(120), Slot::New);
        assert_eq!(run(&mut m, &[(120, true), (121, true), (123, true)]), vec![Some(504), Some(505), Some(507)]);
        // Repair inside the new segment fills its hole; the new layer's numbers from before
        // the switch are refused.
        assert_eq!(m.classify(122), Slot::Late(506));
        assert_eq!(m.classify(119), Slot::Stale);
        // And back to a layer numbered higher, with a drop right at the switch.
        m.rebase();
        assert_eq!(run(&mut m, &[(9010, false), (9011, true)]), vec![None, Some(508)]);
    }
}
