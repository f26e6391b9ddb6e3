//! Opus through the system's libopus (Debian `libopus-dev`), mono 48 kHz, 20 ms frames.

use super::CodecError;
use super::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame};

fn err(op: &'static str) -> impl Fn(opus::Error) -> CodecError {
    move |e| CodecError::Opus { op, message: e.to_string() }
}

pub struct OpusEncoder {
    inner: opus::Encoder,
}

impl OpusEncoder {
    pub fn new(bitrate_bps: i32) -> Result<Self, CodecError> {
        let mut inner = opus::Encoder::new(AUDIO_SAMPLE_RATE, opus::Channels::Mono, opus::Application::Voip)
            .map_err(err("encoder init"))?;
        inner.set_bitrate(opus::Bitrate::Bits(bitrate_bps)).map_err(err("set bitrate"))?;
        // In-band FEC helps a lossy path; the router relays NACKs only for video.
        inner.set_inband_fec(true).map_err(err("set fec"))?;
        Ok(Self { inner })
    }

    /// Encodes exactly 20 ms (960 samples).
    pub fn encode(&mut self, frame: &AudioFrame) -> Result<Vec<u8>, CodecError> {
        if frame.samples.len() != AUDIO_FRAME_SAMPLES {
            return Err(CodecError::BadSettings("an Opus frame is 960 samples (20 ms at 48 kHz)"));
        }
        self.inner.encode_vec(&frame.samples, 1500).map_err(err("encode"))
    }
}

pub struct OpusDecoder {
    inner: opus::Decoder,
}

impl OpusDecoder {
    pub fn new() -> Result<Self, CodecError> {
        Ok(Self { inner: opus::Decoder::new(AUDIO_SAMPLE_RATE, opus::Channels::Mono).map_err(err("decoder init"))? })
    }

    pub fn decode(&mut self, packet: &[u8]) -> Result<AudioFrame, CodecError> {
        let mut samples = vec![0i16; AUDIO_FRAME_SAMPLES * 6];
        let n = self.inner.decode(packet, &mut samples, false).map_err(err("decode"))?;
        samples.truncate(n);
        Ok(AudioFrame { samples })
    }
}
