//! The real codecs and the built-in sources: VP8 and VP9 (libvpx) and H.264 (OpenH264) keep
//! the test picture intelligible, Opus (libopus) keeps the tone's pitch.

use umbra_client::media::analysis::{dominant_frequency, psnr, rms_dbfs};
use umbra_client::media::keyframe::is_key_frame;
use umbra_client::media::opus::{OpusDecoder, OpusEncoder};
use umbra_client::media::pattern::{TestPattern, Tone};
use umbra_client::media::{VideoCodec, VideoDecoder, VideoEncoder};

#[test]
fn vp8_round_trip_is_intelligible_and_numbered() {
    round_trip(VideoCodec::Vp8);
}

#[test]
fn vp9_round_trip_is_intelligible_and_numbered() {
    round_trip(VideoCodec::Vp9);
}

#[test]
fn h264_round_trip_is_intelligible_and_numbered() {
    round_trip(VideoCodec::H264);
}

fn round_trip(codec: VideoCodec) {
    let pattern = TestPattern::new(320, 240);
    let mut enc = VideoEncoder::new(codec, 320, 240, 30, 600).unwrap();
    let mut dec = VideoDecoder::new(codec).unwrap();
    let mut keys = 0;
    let mut worst = f64::INFINITY;
    for n in 0..60 {
        if n == 30 {
            enc.request_key_frame();
        }
        for ef in enc.encode(&pattern.frame(n)).unwrap() {
            keys += ef.key_frame as u32;
            assert_eq!(is_key_frame(codec, &ef.data), ef.key_frame, "{codec} frame {n}: the bitstream says otherwise");
            for pic in dec.decode(&ef.data).unwrap() {
                assert_eq!(TestPattern::read_frame_number(&pic), Some(n));
                let p = psnr(&pattern.frame(n), &pic).unwrap();
                worst = worst.min(p);
            }
        }
    }
    assert!(keys >= 2, "{codec}: first frame and the requested one are key frames");
    assert!(worst >= 30.0, "{codec}: worst PSNR {worst:.1} dB");
    // A different frame is clearly worse: the measure can fail.
    let wrong = psnr(&pattern.frame(5), &pattern.frame(40)).unwrap();
    assert!(wrong < 20.0, "{wrong}");
}

#[test]
fn opus_round_trip_keeps_the_tone() {
    let mut tone = Tone::new(440.0);
    let mut enc = OpusEncoder::new(32_000).unwrap();
    let mut dec = OpusDecoder::new().unwrap();
    let mut out = Vec::new();
    for _ in 0..50 {
        let pkt = enc.encode(&tone.next_frame()).unwrap();
        out.extend(dec.decode(&pkt).unwrap().samples);
    }
    let tail = &out[out.len() / 2..];
    let f = dominant_frequency(tail, 48_000).unwrap();
    assert!((f - 440.0).abs() <= 10.0, "dominant {f} Hz");
    assert!(rms_dbfs(tail) > -20.0);
    assert!(enc.encode(&umbra_client::media::AudioFrame { samples: vec![0; 100] }).is_err());
}
