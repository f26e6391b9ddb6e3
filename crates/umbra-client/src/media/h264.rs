//! H.264 through OpenH264, compiled from the C++ source that the `openh264` crate bundles
//! (docs/client.md says why not Debian's library). Frames are Annex B byte streams: start
//! codes before every NAL unit, SPS and PPS in front of every IDR picture, which is what
//! umbra-e2ee's H.264 framing and str0m's packetizer both expect.

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile, RateControlMode,
    UsageType,
};
use openh264::formats::{YUVSlices, YUVSource};

use super::{CodecError, EncodedPicture, VideoFrame};

fn failed(op: &'static str) -> impl Fn(openh264::Error) -> CodecError {
    move |e| CodecError::OpenH264 { op, message: e.to_string() }
}

/// Real-time H.264 encoder (constrained baseline, the profile every WebRTC endpoint decodes).
pub struct H264Encoder {
    // Boxed: OpenH264's wrapper carries its settings inline (7 KB).
    encoder: Box<Encoder>,
    width: u32,
    height: u32,
    force_key: bool,
}

impl H264Encoder {
    pub fn new(width: u32, height: u32, fps: u32, bitrate_kbps: u32) -> Result<Self, CodecError> {
        let valid = |d: u32| (16..=4096).contains(&d) && d.is_multiple_of(2);
        if !valid(width) || !valid(height) {
            return Err(CodecError::BadSettings("width and height must be even and between 16 and 4096"));
        }
        if fps == 0 {
            return Err(CodecError::BadSettings("fps must be positive"));
        }
        let config = EncoderConfig::new()
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(bitrate_kbps.saturating_mul(1000)))
            .max_frame_rate(FrameRate::from_hz(fps as f32))
            // OpenH264 holds the bit rate only when it may skip pictures (as WebRTC lets it);
            // a skipped picture is simply not sent.
            .skip_frames(true)
            .intra_frame_period(IntraFramePeriod::from_num_frames(fps * 10))
            // OpenH264's default (medium) complexity: low saved only 14 % of the CPU time per
            // 720p picture and undershot the bit rate more (docs/performance.md).
            .complexity(Complexity::Medium)
            .num_threads(1);
        let encoder =
            Box::new(Encoder::with_api_config(OpenH264API::from_source(), config).map_err(failed("encoder init"))?);
        Ok(Self { encoder, width, height, force_key: true })
    }

    /// The next frame will be an IDR picture (with SPS and PPS in front).
    pub fn request_key_frame(&mut self) {
        self.force_key = true;
    }

    pub fn encode(&mut self, frame: &VideoFrame) -> Result<Vec<EncodedPicture>, CodecError> {
        CodecError::check_size(frame, self.width, self.height)?;
        if std::mem::take(&mut self.force_key) {
            self.encoder.force_intra_frame();
        }
        let (w, h) = (frame.width as usize, frame.height as usize);
        let yuv = YUVSlices::new((frame.y(), frame.u(), frame.v()), (w, h), (w, w / 2, w / 2));
        let stream = self.encoder.encode(&yuv).map_err(failed("encode"))?;
        let key_frame = stream.frame_type() == FrameType::IDR;
        let data = stream.to_vec();
        Ok(if data.is_empty() { Vec::new() } else { vec![EncodedPicture { data, key_frame }] })
    }
}

/// H.264 decoder for any stream WebRTC endpoints send (constrained baseline and above as far as
/// OpenH264 decodes them).
pub struct H264Decoder {
    decoder: Decoder,
}

impl H264Decoder {
    pub fn new() -> Result<Self, CodecError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(failed("decoder init"))?;
        Ok(Self { decoder })
    }

    /// Decodes one access unit (Annex B); returns the picture it completed, if any.
    pub fn decode(&mut self, data: &[u8]) -> Result<Vec<VideoFrame>, CodecError> {
        let Some(pic) = self.decoder.decode(data).map_err(failed("decode"))? else {
            return Ok(Vec::new());
        };
        let (w, h) = pic.dimensions();
        let (sy, su, sv) = pic.strides();
        let (cw, ch) = VideoFrame::chroma_size(w as u32, h as u32);
        let mut out = Vec::with_capacity(VideoFrame::byte_len(w as u32, h as u32));
        for (plane, stride, pw, ph) in
            [(pic.y(), sy, w, h), (pic.u(), su, cw as usize, ch as usize), (pic.v(), sv, cw as usize, ch as usize)]
        {
            for row in 0..ph {
                let start = row * stride;
                let line = plane.get(start..start + pw).ok_or(CodecError::OpenH264 {
                    op: "decode",
                    message: "the decoder returned a picture smaller than its size".into(),
                })?;
                out.extend_from_slice(line);
            }
        }
        Ok(vec![VideoFrame { width: w as u32, height: h as u32, data: out }])
    }
}
