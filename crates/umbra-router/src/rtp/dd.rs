//! The Dependency Descriptor RTP header extension (AV1 RTP specification, appendix A): which
//! spatial and temporal layer an AV1 packet's frame belongs to, in clear under E2EE.
//!
//! A descriptor is 3 mandatory bytes (`start_of_frame`, `end_of_frame`, a 6-bit template id,
//! a 16-bit frame number), then optional extended fields. Key frames carry the template
//! dependency structure, which maps each template id to a (spatial, temporal) pair and may give
//! each spatial layer's render size; later packets name only their template, so the structure
//! is kept per stream ([`Structure`]) and every packet is read against the last one seen.
//!
//! Only what layer forwarding needs is kept: template layers and render sizes. The structure's
//! decode target indications, frame diffs and chains are read past, not stored. Every read is
//! bounds-checked (a short or malformed descriptor is `None`, never a panic), and loops are
//! bounded by the spec's field widths: at most [`MAX_TEMPLATES`] templates, 32 decode targets.

use str0m::rtp::{ExtensionSerializer, ExtensionValues};

/// The extension's URI in SDP (`a=extmap`).
pub const URI: &str = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// Template ids are 6 bits.
pub const MAX_TEMPLATES: usize = 64;
/// Spatial layers whose render sizes are kept.
pub const MAX_SPATIAL: usize = 8;

/// A stream's template dependency structure, as far as layers go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Structure {
    /// `template_id_offset`: template id of the first template.
    offset: u8,
    /// (spatial id, temporal id) per template, in template order.
    layers: Vec<(u8, u8)>,
    /// Render sizes per spatial layer, when the structure has them.
    sizes: Option<[(u16, u16); MAX_SPATIAL]>,
}

impl Structure {
    /// Spatial layers the structure describes.
    pub fn spatial_layers(&self) -> u8 {
        self.layers.iter().map(|&(s, _)| s).max().map_or(1, |s| s + 1)
    }

    pub fn size(&self, sid: usize) -> Option<(u32, u32)> {
        let (w, h) = *self.sizes.as_ref()?.get(sid)?;
        Some((u32::from(w) + 1, u32::from(h) + 1))
    }

    /// The (spatial, temporal) pair of a template id; `None` for an id outside the structure.
    pub fn layer_of(&self, template_id: u8) -> Option<(u8, u8)> {
        let index = (usize::from(template_id) + MAX_TEMPLATES - usize::from(self.offset)) % MAX_TEMPLATES;
        self.layers.get(index).copied()
    }
}

/// One packet's descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub start_of_frame: bool,
    pub end_of_frame: bool,
    pub template_id: u8,
    pub frame_number: u16,
    /// The structure, when this packet carries one (key frames).
    pub structure: Option<Structure>,
}

/// A packet's descriptor bytes as str0m carries them (`ExtensionValues::user_values`), read
/// on the way in and written again, unchanged, to subscribers of an SVC stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw(pub Vec<u8>);

/// str0m's hook for an extension it does not know.
#[derive(Debug)]
pub struct Serializer;

impl ExtensionSerializer for Serializer {
    fn write_to(&self, buf: &mut [u8], ev: &ExtensionValues) -> usize {
        // Nothing to write, or no room: 0, and the packet goes without the extension.
        let Some(raw) = ev.user_values.get::<Raw>() else { return 0 };
        let Some(out) = buf.get_mut(..raw.0.len()) else { return 0 };
        out.copy_from_slice(&raw.0);
        raw.0.len()
    }

    fn parse_value(&self, buf: &[u8], ev: &mut ExtensionValues) -> bool {
        ev.user_values.set(Raw(buf.to_vec()));
        true
    }

    fn is_video(&self) -> bool {
        true
    }

    fn is_audio(&self) -> bool {
        false
    }

    fn requires_two_byte_form(&self, ev: &ExtensionValues) -> bool {
        // The one-byte form holds 1 to 16 bytes; key frames' structures are longer.
        ev.user_values.get::<Raw>().is_some_and(|r| r.0.is_empty() || r.0.len() > 16)
    }
}

struct Bits<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn read(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.buf.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    fn flag(&mut self) -> Option<bool> {
        Some(self.read(1)? == 1)
    }

    /// `ns(n)`: a non-symmetric unsigned value below `n` (appendix A.8.1).
    fn ns(&mut self, n: u32) -> Option<u32> {
        let w = 32 - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.read(w.saturating_sub(1))?;
        if v < m {
            return Some(v);
        }
        Some((v << 1) - m + self.read(1)?)
    }
}

/// Parse one descriptor (the extension's bytes).
pub fn parse(buf: &[u8]) -> Option<Descriptor> {
    let mut b = Bits { buf, pos: 0 };
    let start_of_frame = b.flag()?;
    let end_of_frame = b.flag()?;
    let template_id = b.read(6)? as u8;
    let frame_number = b.read(16)? as u16;
    let mut structure = None;
    if buf.len() > 3 && b.flag()? {
        // template_dependency_structure_present_flag; the other four flags only say what
        // follows the structure, which is not read.
        b.read(4)?;
        structure = Some(parse_structure(&mut b)?);
    }
    Some(Descriptor { start_of_frame, end_of_frame, template_id, frame_number, structure })
}

fn parse_structure(b: &mut Bits<'_>) -> Option<Structure> {
    let offset = b.read(6)? as u8;
    let decode_targets = b.read(5)? + 1;
    // template_layers(): next_layer_idc 0 same layer, 1 next temporal, 2 next spatial, 3 end.
    let mut layers = Vec::new();
    let (mut sid, mut tid) = (0u8, 0u8);
    loop {
        if layers.len() == MAX_TEMPLATES {
            return None;
        }
        layers.push((sid, tid));
        match b.read(2)? {
            0 => {}
            1 => tid = tid.checked_add(1)?,
            2 => {
                tid = 0;
                sid = sid.checked_add(1)?;
            }
            _ => break,
        }
    }
    let templates = layers.len() as u32;
    // template_dtis(): 2 bits per template and decode target.
    for _ in 0..templates * decode_targets {
        b.read(2)?;
    }
    // template_fdiffs(): per template, a list of 4-bit diffs each preceded by a follow flag.
    for _ in 0..templates {
        let mut n = 0;
        while b.flag()? {
            b.read(4)?;
            n += 1;
            if n > 16 {
                return None;
            }
        }
    }
    // template_chains()
    let chains = b.ns(decode_targets + 1)?;
    if chains > 0 {
        for _ in 0..decode_targets {
            b.ns(chains)?;
        }
        for _ in 0..templates * chains {
            b.read(4)?;
        }
    }
    // decode_target_layers() reads no bits.
    let sizes = if b.flag()? {
        let mut sizes = [(0u16, 0u16); MAX_SPATIAL];
        for s in sizes.iter_mut().take(usize::from(sid) + 1) {
            *s = (b.read(16)? as u16, b.read(16)? as u16);
        }
        Some(sizes)
    } else {
        None
    };
    Some(Structure { offset, layers, sizes })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bits written most significant first, padded with zeros to whole bytes.
    fn bits(fields: &[(u32, u32)]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut n = 0usize;
        for &(v, w) in fields {
            for i in (0..w).rev() {
                if n.is_multiple_of(8) {
                    out.push(0);
                }
                if (v >> i) & 1 == 1 {
                    *out.last_mut().unwrap() |= 0x80 >> (n % 8);
                }
                n += 1;
            }
        }
        out
    }

    /// An L2T2 key frame's descriptor: 4 templates (S0T0, S0T1, S1T0, S1T1), 4 decode
    /// targets, one diff for templates 1-3, 2 chains, render sizes 320x180 and 640x360.
    fn l2t2_key() -> Vec<u8> {
        let mut f = vec![(1, 1), (0, 1), (5, 6), (0x1234, 16)];
        f.extend([(1, 1), (0, 4)]); // structure present, other flags clear
        f.extend([(5, 6), (3, 5)]); // template_id_offset 5, 4 decode targets
        f.extend([(1, 2), (2, 2), (1, 2), (3, 2)]); // S0T0 S0T1 S1T0 S1T1
        f.extend(std::iter::repeat_n((2, 2), 16)); // dtis
        f.extend([(0, 1)]); // template 0: no diffs
        for _ in 0..3 {
            f.extend([(1, 1), (0, 4), (0, 1)]); // one diff of 1
        }
        // chains: ns(5) = 2 is 2 bits (w=3, m=3, v=2 < 3); protected_by ns(2) = 1 bit each.
        f.extend([(2, 2), (0, 1), (0, 1), (1, 1), (1, 1)]);
        f.extend(std::iter::repeat_n((1, 4), 8)); // chain diffs
        f.extend([(1, 1), (319, 16), (179, 16), (639, 16), (359, 16)]);
        bits(&f)
    }

    #[test]
    fn a_key_frame_structure_maps_templates_to_layers_and_sizes() {
        let d = parse(&l2t2_key()).unwrap();
        assert!(d.start_of_frame && !d.end_of_frame);
        assert_eq!((d.template_id, d.frame_number), (5, 0x1234));
        let s = d.structure.unwrap();
        assert_eq!(s.spatial_layers(), 2);
        assert_eq!(s.size(0), Some((320, 180)));
        assert_eq!(s.size(1), Some((640, 360)));
        // Ids count from the offset, modulo 64.
        assert_eq!(s.layer_of(5), Some((0, 0)));
        assert_eq!(s.layer_of(6), Some((0, 1)));
        assert_eq!(s.layer_of(8), Some((1, 1)));
        assert_eq!(s.layer_of(9), None);
        assert_eq!(s.layer_of(4), None);
    }

    #[test]
    fn mandatory_fields_alone_and_every_truncation() {
        let d = parse(&[0x43, 0x00, 0x07]).unwrap();
        assert!(!d.start_of_frame && d.end_of_frame);
        assert_eq!((d.template_id, d.frame_number, d.structure), (3, 7, None));
        // An extended descriptor without a structure (active decode targets only).
        assert_eq!(parse(&[0x43, 0x00, 0x07, 0x40]).unwrap().structure, None);
        let key = l2t2_key();
        for n in 0..key.len() {
            assert!(parse(&key[..n]).is_none_or(|d| d.structure.is_none()), "cut at {n}");
        }
        assert_eq!(parse(&[0x80, 0x00]), None);
    }

    #[test]
    fn ns_reads_the_short_and_the_long_codes() {
        // n = 5: w = 3, m = 3; values 0..3 in 2 bits, 3 and 4 in 3 bits.
        let mut b = Bits { buf: &[0b1011_1100], pos: 0 };
        assert_eq!(b.ns(5), Some(2)); // "10"
        assert_eq!(b.ns(5), Some(4)); // "111": v = 3 >= m, (3 << 1) - 3 + 1
        assert_eq!(Bits { buf: &[0], pos: 0 }.ns(1), Some(0)); // no bits for one value
    }
}
