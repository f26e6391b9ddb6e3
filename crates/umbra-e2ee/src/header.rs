//! The SFrame header (RFC 9605 §4.3): one config byte `X|K(3)|Y|C(3)`, then the KID and the
//! counter as big-endian integers in the fewest bytes, each inlined in the config byte when < 8.

use crate::error::FrameError;

/// Longest possible header: config byte + 8 KID bytes + 8 CTR bytes.
pub const MAX_HEADER_LEN: usize = 17;

/// A parsed SFrame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub kid: u64,
    pub ctr: u64,
}

fn byte_len(v: u64) -> usize {
    (8 - v.leading_zeros() as usize / 8).max(1)
}

impl Header {
    pub fn new(kid: u64, ctr: u64) -> Self {
        Self { kid, ctr }
    }

    /// Encoded length in bytes (never zero: the config byte is always there).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        let field = |v: u64| if v < 8 { 0 } else { byte_len(v) };
        1 + field(self.kid) + field(self.ctr)
    }

    /// Appends the encoded header to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let mut config = 0u8;
        let at = out.len();
        out.push(0);
        if self.kid < 8 {
            config |= (self.kid as u8) << 4;
        } else {
            let n = byte_len(self.kid);
            config |= 0x80 | (((n - 1) as u8) << 4);
            out.extend_from_slice(&self.kid.to_be_bytes()[8 - n..]);
        }
        if self.ctr < 8 {
            config |= self.ctr as u8;
        } else {
            let n = byte_len(self.ctr);
            config |= 0x08 | (n - 1) as u8;
            out.extend_from_slice(&self.ctr.to_be_bytes()[8 - n..]);
        }
        out[at] = config;
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.encode_into(&mut v);
        v
    }

    /// Parses a header from the start of `buf`; returns it and its encoded length.
    /// Non-minimal encodings are accepted: the header bytes are authenticated as received.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), FrameError> {
        let config = *buf.first().ok_or(FrameError::Truncated("empty SFrame header"))?;
        let mut pos = 1;
        let mut field = |extended: bool, inline: u8| -> Result<u64, FrameError> {
            if !extended {
                return Ok(inline as u64);
            }
            let n = inline as usize + 1;
            let bytes = buf.get(pos..pos + n).ok_or(FrameError::Truncated("SFrame header KID/CTR"))?;
            pos += n;
            Ok(bytes.iter().fold(0u64, |acc, b| (acc << 8) | *b as u64))
        };
        let kid = field(config & 0x80 != 0, (config >> 4) & 0x07)?;
        let ctr = field(config & 0x08 != 0, config & 0x07)?;
        Ok((Self { kid, ctr }, pos))
    }
}
