//! The VP9 RTP payload descriptor (RFC 9628 §4.2), which stays clear under E2EE: what the
//! router needs to forward spatial and temporal layers of one SVC stream.
//!
//! ```text
//!  |I|P|L|F|B|E|V|Z|      always
//!  |M| PICTURE ID  |      I; a second byte when M
//!  |  TID |U| SID |D|     L
//!  |   TL0PICIDX   |      L and not F (non-flexible mode)
//!  |   P_DIFF    |N|      P and F, up to 3 (N: another follows)
//!  |N_S|Y|G|-|-|-|        V: the scalability structure (SS), then Y: (N_S+1) x 16-bit
//!                         width and height, G: N_G and the picture group
//! ```
//!
//! Every field is bounds-checked: a truncated descriptor is `None`, never a panic. The picture
//! group of the SS is skipped, not kept: the router needs only the spatial layer count and sizes.

/// Spatial layers an SS can declare (N_S is 3 bits).
pub const MAX_SPATIAL: usize = 8;

/// The scalability structure: how many spatial layers the stream has, and their sizes when
/// the publisher sent them (Y bit), smallest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Structure {
    pub layers: u8,
    pub sizes: Option<[(u16, u16); MAX_SPATIAL]>,
}

impl Structure {
    pub fn size(&self, sid: usize) -> Option<(u32, u32)> {
        let (w, h) = *self.sizes.as_ref()?.get(sid)?;
        (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Descriptor {
    /// P: the frame references an earlier picture (no key picture starts here).
    pub inter_picture: bool,
    /// B: the first packet of a layer frame.
    pub begins_frame: bool,
    /// E: the last packet of a layer frame.
    pub ends_frame: bool,
    /// TID, when the L byte is present.
    pub tid: Option<u8>,
    /// SID, when the L byte is present.
    pub sid: Option<u8>,
    /// U: a switching-up point (no later frame of this TID references one before it).
    pub switching_up: bool,
    pub structure: Option<Structure>,
}

impl Descriptor {
    /// The first packet of a picture: a layer frame begins at spatial layer 0.
    pub fn begins_picture(&self) -> bool {
        self.begins_frame && self.sid.unwrap_or(0) == 0
    }
}

/// A cursor that never reads past the end.
struct Bytes<'a> {
    p: &'a [u8],
    i: usize,
}

impl Bytes<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.p.get(self.i)?;
        self.i += 1;
        Some(b)
    }

    fn skip(&mut self, n: usize) -> Option<()> {
        self.i = self.i.checked_add(n).filter(|&i| i <= self.p.len())?;
        Some(())
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.next()?, self.next()?]))
    }
}

/// Parse the descriptor at the start of a VP9 RTP payload.
pub fn parse(payload: &[u8]) -> Option<Descriptor> {
    let mut b = Bytes { p: payload, i: 0 };
    let b0 = b.next()?;
    let bit = |n: u8| b0 & (0x80 >> n) != 0;
    let (i, p, l, f, begin, end, v) = (bit(0), bit(1), bit(2), bit(3), bit(4), bit(5), bit(6));
    if i && b.next()? & 0x80 != 0 {
        b.skip(1)?;
    }
    let (mut tid, mut sid, mut switching_up) = (None, None, false);
    if l {
        let x = b.next()?;
        tid = Some(x >> 5);
        switching_up = x & 0x10 != 0;
        sid = Some((x >> 1) & 0x07);
        if !f {
            b.skip(1)?; // TL0PICIDX
        }
    }
    if p && f {
        // At most three reference indices (RFC 9628 §4.2: "up to 3 times").
        for _ in 0..3 {
            if b.next()? & 0x01 == 0 {
                break;
            }
        }
    }
    let structure = if v { Some(parse_structure(&mut b)?) } else { None };
    Some(Descriptor { inter_picture: p, begins_frame: begin, ends_frame: end, tid, sid, switching_up, structure })
}

fn parse_structure(b: &mut Bytes<'_>) -> Option<Structure> {
    let x = b.next()?;
    let layers = (x >> 5) + 1;
    let sizes = if x & 0x10 != 0 {
        let mut sizes = [(0u16, 0u16); MAX_SPATIAL];
        for s in sizes.iter_mut().take(usize::from(layers)) {
            *s = (b.u16()?, b.u16()?);
        }
        Some(sizes)
    } else {
        None
    };
    if x & 0x08 != 0 {
        let groups = b.next()?;
        for _ in 0..groups {
            let g = b.next()?;
            b.skip(usize::from((g >> 2) & 0x03))?;
        }
    }
    Some(Structure { layers, sizes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_picture_with_three_spatial_layers_and_their_sizes() {
        // I (15-bit id), L, B, V; TID 0 U 0 SID 0 D 0; TL0PICIDX; SS: N_S=2, Y, G with one
        // group entry of R=1.
        let mut p = vec![0xAA, 0x81, 0x23, 0x00, 0x07, 0x58];
        for (w, h) in [(320u16, 180u16), (640, 360), (1280, 720)] {
            p.extend_from_slice(&w.to_be_bytes());
            p.extend_from_slice(&h.to_be_bytes());
        }
        p.extend_from_slice(&[0x01, 0x04, 0x01, 0xAB]);
        let d = parse(&p).unwrap();
        assert!(d.begins_picture() && !d.inter_picture && !d.ends_frame);
        assert_eq!((d.tid, d.sid), (Some(0), Some(0)));
        let s = d.structure.unwrap();
        assert_eq!(s.layers, 3);
        assert_eq!(s.size(0), Some((320, 180)));
        assert_eq!(s.size(2), Some((1280, 720)));
        assert_eq!(s.size(3), None);
        // Cut anywhere inside: None, never a panic.
        for n in 0..p.len() - 1 {
            assert_eq!(parse(&p[..n]), None, "cut at {n}");
        }
    }

    #[test]
    fn layer_indices_in_flexible_and_non_flexible_mode() {
        // Non-flexible: P, L, E; TID 2, U, SID 1, D; TL0PICIDX.
        let d = parse(&[0x64, 0x53, 0x09, 0xFF]).unwrap();
        assert!(d.inter_picture && d.ends_frame && !d.begins_frame);
        assert_eq!((d.tid, d.sid, d.switching_up), (Some(2), Some(1), true));
        assert!(!d.begins_picture());
        // Flexible: I (7-bit), P, L, F, B; TID 1 SID 2; two P_DIFFs (N on the first).
        let d = parse(&[0xF8, 0x05, 0x24, 0x03, 0x02, 0xEE]).unwrap();
        assert_eq!((d.tid, d.sid), (Some(1), Some(2)));
        assert!(d.begins_frame && !d.begins_picture());
        // The P_DIFF list cut short.
        assert_eq!(parse(&[0xF8, 0x05, 0x24, 0x03]), None);
        // No L byte: no layers, every frame begins a picture.
        let d = parse(&[0x08, 0xEE]).unwrap();
        assert_eq!((d.tid, d.sid), (None, None));
        assert!(d.begins_picture());
        assert_eq!(parse(&[]), None);
    }
}
