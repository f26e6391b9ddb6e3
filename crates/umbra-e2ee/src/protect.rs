//! Turns a whole encoded frame into its protected form and back, using the codec's framing
//! and one SFrame operation per frame.

use crate::aead::AuthFailed;
use crate::error::FrameError;
use crate::framing::{self, Codec, Form, Part};
use crate::header::Header;
use crate::sframe::SframeKey;
use crate::suite::CipherSuite;

/// Largest frame accepted, plaintext or protected. Far above any real video frame (a 4K key
/// frame is a few MB) and far below AES-CTR's 2^32-block limit per nonce.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

fn check_len(len: usize) -> Result<(), FrameError> {
    if len > MAX_FRAME_LEN {
        return Err(FrameError::TooLarge { len, max: MAX_FRAME_LEN });
    }
    Ok(())
}

/// Protects `frame` under `key` with the SFrame header `(kid, ctr)`.
pub(crate) fn seal(codec: Codec, key: &SframeKey, kid: u64, ctr: u64, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    check_len(frame.len())?;
    let parts = framing::split(codec, frame, Form::Plain)?;
    let mut header = Vec::with_capacity(crate::header::MAX_HEADER_LEN + 64);
    Header::new(kid, ctr).encode_into(&mut header);
    let header_len = header.len();
    // AAD = header || metadata; build it in one buffer.
    let mut aad = header;
    aad.push(codec.framing_id());
    let mut plain = Vec::with_capacity(frame.len());
    let mut lens = Vec::with_capacity(2);
    for part in &parts {
        if let Part::Unit { head, body } = part {
            framing::describe(codec, head, body.len(), &mut aad);
            plain.extend_from_slice(body);
            lens.push(body.len());
        }
    }
    if lens.is_empty() {
        return Err(framing::malformed(codec, "no unit to protect"));
    }
    let mut tag = Vec::with_capacity(16);
    key.aead().seal(&key.nonce(ctr), &aad, &mut plain, &mut tag)?;

    let mut out = Vec::with_capacity(frame.len() + header_len + tag.len() + 8 * lens.len());
    let (mut unit, mut offset) = (0, 0);
    for part in &parts {
        match part {
            Part::Clear(c) => out.extend_from_slice(c),
            Part::Unit { head, .. } => {
                let ct = &plain[offset..offset + lens[unit]];
                offset += lens[unit];
                let first: &[u8] = if unit == 0 { &aad[..header_len] } else { &[] };
                let last: &[u8] = if unit + 1 == lens.len() { &tag } else { &[] };
                framing::write_unit(codec, head, &[first, ct, last], Form::Wire, &mut out);
                unit += 1;
            }
        }
    }
    check_len(out.len())?;
    Ok(out)
}

/// A protected frame taken apart, ready to be opened with one or more candidate keys.
pub(crate) struct WireFrame<'a> {
    codec: Codec,
    parts: Vec<Part<'a>>,
    header: Header,
    aad: Vec<u8>,
    ciphertext: Vec<u8>,
    lens: Vec<usize>,
    tag: Vec<u8>,
}

impl<'a> WireFrame<'a> {
    pub(crate) fn parse(codec: Codec, suite: CipherSuite, frame: &'a [u8]) -> Result<Self, FrameError> {
        check_len(frame.len())?;
        let parts = framing::split(codec, frame, Form::Wire)?;
        let bodies: Vec<&[u8]> = parts
            .iter()
            .filter_map(|p| match p {
                Part::Unit { body, .. } => Some(body.as_ref()),
                Part::Clear(_) => None,
            })
            .collect();
        let Some(first) = bodies.first() else {
            return Err(framing::malformed(codec, "no protected unit"));
        };
        let (header, header_len) = Header::decode(first)?;
        let tag_len = suite.tag_len();
        let mut lens: Vec<usize> = bodies.iter().map(|b| b.len()).collect();
        lens[0] -= header_len;
        let last = lens.len() - 1;
        if lens[last] < tag_len {
            return Err(FrameError::Truncated("protected frame shorter than its tag"));
        }
        lens[last] -= tag_len;

        let mut aad = Vec::with_capacity(header_len + 64);
        aad.extend_from_slice(&first[..header_len]);
        aad.push(codec.framing_id());
        let mut ciphertext = Vec::with_capacity(frame.len());
        let mut i = 0;
        for part in &parts {
            if let Part::Unit { head, body } = part {
                framing::describe(codec, head, lens[i], &mut aad);
                let start = if i == 0 { header_len } else { 0 };
                ciphertext.extend_from_slice(&body[start..start + lens[i]]);
                i += 1;
            }
        }
        let last_body = bodies[last];
        let tag = last_body[last_body.len() - tag_len..].to_vec();
        Ok(Self { codec, parts, header, aad, ciphertext, lens, tag })
    }

    pub(crate) fn header(&self) -> Header {
        self.header
    }

    /// Verifies the frame under `key` and, if it authenticates, returns the original frame.
    pub(crate) fn open(&self, key: &SframeKey) -> Result<Result<Vec<u8>, AuthFailed>, FrameError> {
        let mut plain = self.ciphertext.clone();
        if let Err(e) = key.aead().open(&key.nonce(self.header.ctr), &self.aad, &mut plain, &self.tag)? {
            return Ok(Err(e));
        }
        let mut out = Vec::with_capacity(plain.len() + 64);
        let (mut unit, mut offset) = (0, 0);
        for part in &self.parts {
            match part {
                Part::Clear(c) => out.extend_from_slice(c),
                Part::Unit { head, .. } => {
                    let pt = &plain[offset..offset + self.lens[unit]];
                    offset += self.lens[unit];
                    framing::write_unit(self.codec, head, &[pt], Form::Plain, &mut out);
                    unit += 1;
                }
            }
        }
        Ok(Ok(out))
    }
}

/// Protects one frame with an explicit key, KID and counter: the stateless core of
/// [`crate::FrameEncryptor`]. The caller must never reuse a `(key, ctr)` pair.
pub fn seal_frame(codec: Codec, key: &SframeKey, kid: u64, ctr: u64, frame: &[u8]) -> Result<Vec<u8>, FrameError> {
    seal(codec, key, kid, ctr, frame)
}

/// Opens one protected frame with an explicit key: the stateless core of
/// [`crate::StreamDecryptor`], without replay protection or key trial.
pub fn open_frame(
    codec: Codec,
    key: &SframeKey,
    frame: &[u8],
) -> Result<Result<(Header, Vec<u8>), AuthFailed>, FrameError> {
    let wire = WireFrame::parse(codec, key.suite(), frame)?;
    Ok(wire.open(key)?.map(|plain| (wire.header(), plain)))
}
