//! Codec-aware framing: which bytes of an encoded frame stay readable (and authenticated) so
//! that packetizers, depacketizers and the router still work, and where the SFrame header,
//! ciphertext and tag go. `docs/e2ee-protocol.md` §5 is the normative description.
//!
//! Every codec splits a frame into [`Part`]s. Clear parts are copied verbatim and are not
//! authenticated (browsers rewrite or drop some of them in transit, e.g. H.264 SPS VUI and AV1
//! temporal delimiters). Protected units keep a readable head, which is authenticated, and
//! have a body that is encrypted. All bodies of a frame form one SFrame plaintext: the SFrame
//! header goes in front of the first body, the tag after the last.

mod av1;
mod h264;
mod prefix;

use std::borrow::Cow;

use crate::error::FrameError;

/// The codec of a stream, as negotiated in SDP. Both ends must agree on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Everything after the SFrame header is ciphertext. For codecs Umbra has no rule for.
    Opaque,
    Vp8,
    Vp9,
    /// H.264 in Annex B byte-stream format (start codes), as browsers and encoders emit it.
    H264,
    /// AV1 as a sequence of OBUs (low-overhead bitstream format).
    Av1,
    Opus,
}

impl Codec {
    pub const ALL: [Codec; 6] = [Codec::Opaque, Codec::Vp8, Codec::Vp9, Codec::H264, Codec::Av1, Codec::Opus];

    /// First byte of the framing metadata: binds the codec rule into the AAD, so a frame can
    /// not be reinterpreted under another codec's layout.
    pub fn framing_id(self) -> u8 {
        match self {
            Codec::Opaque => 0,
            Codec::Vp8 => 1,
            Codec::Vp9 => 2,
            Codec::H264 => 3,
            Codec::Av1 => 4,
            Codec::Opus => 5,
        }
    }

    /// Maps an RTP/SDP MIME type (`video/VP8`, `audio/opus`, ...) to its framing. Unknown
    /// types map to `Opaque`, which is safe for any codec whose packetizer ignores the payload.
    pub fn from_mime_type(mime: &str) -> Codec {
        let sub = mime.rsplit('/').next().unwrap_or(mime);
        match sub.to_ascii_lowercase().as_str() {
            "vp8" => Codec::Vp8,
            "vp9" => Codec::Vp9,
            "h264" => Codec::H264,
            "av1" | "av1x" => Codec::Av1,
            "opus" => Codec::Opus,
            _ => Codec::Opaque,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Opaque => "opaque",
            Codec::Vp8 => "VP8",
            Codec::Vp9 => "VP9",
            Codec::H264 => "H.264",
            Codec::Av1 => "AV1",
            Codec::Opus => "Opus",
        }
    }
}

impl std::fmt::Display for Codec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Which form a frame is in when it is split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// As the encoder produced it: bodies are plaintext.
    Plain,
    /// As it travels: bodies are (codec-encoded) SFrame regions.
    Wire,
}

/// One piece of a frame.
#[derive(Debug)]
pub(crate) enum Part<'a> {
    /// Copied verbatim; not authenticated.
    Clear(&'a [u8]),
    /// A readable, authenticated head and a protected body. In [`Form::Wire`] the body is the
    /// region after codec decoding (H.264 emulation prevention removed).
    Unit { head: &'a [u8], body: Cow<'a, [u8]> },
}

pub(crate) fn malformed(codec: Codec, reason: &'static str) -> FrameError {
    FrameError::Malformed { codec, reason }
}

/// Splits `frame` into parts according to `codec`'s rule.
pub(crate) fn split(codec: Codec, frame: &[u8], form: Form) -> Result<Vec<Part<'_>>, FrameError> {
    match codec {
        Codec::H264 => h264::split(frame, form),
        Codec::Av1 => av1::split(frame),
        _ => {
            let n = prefix::clear_len(codec, frame)?;
            Ok(vec![Part::Unit { head: &frame[..n], body: Cow::Borrowed(&frame[n..]) }])
        }
    }
}

/// Appends a unit's AAD entry: what of its head and shape the tag must cover.
pub(crate) fn describe(codec: Codec, head: &[u8], body_len: usize, out: &mut Vec<u8>) {
    match codec {
        Codec::H264 => h264::describe(head, body_len, out),
        Codec::Av1 => av1::describe(head, body_len, out),
        // The head's own first byte fixes its length, and the body runs to the end.
        _ => out.extend_from_slice(head),
    }
}

/// Writes a unit: its head, then the body given as consecutive pieces, in `form`.
pub(crate) fn write_unit(codec: Codec, head: &[u8], pieces: &[&[u8]], form: Form, out: &mut Vec<u8>) {
    match codec {
        Codec::H264 => h264::write_unit(head, pieces, form, out),
        Codec::Av1 => av1::write_unit(head, pieces, out),
        _ => {
            out.extend_from_slice(head);
            for p in pieces {
                out.extend_from_slice(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_map_to_framings() {
        assert_eq!(Codec::from_mime_type("video/VP8"), Codec::Vp8);
        assert_eq!(Codec::from_mime_type("video/vp9"), Codec::Vp9);
        assert_eq!(Codec::from_mime_type("video/H264"), Codec::H264);
        assert_eq!(Codec::from_mime_type("video/AV1"), Codec::Av1);
        assert_eq!(Codec::from_mime_type("audio/opus"), Codec::Opus);
        assert_eq!(Codec::from_mime_type("audio/PCMU"), Codec::Opaque);
    }
}
