//! The audio level of RFC 6464 (client-to-mixer audio level header extension): what the router
//! ranks active speakers by, computed from the PCM the publisher encodes.

/// The level of one block of samples in -dBov, 0 (full scale) to 127 (silence): the RMS of the
/// block relative to a full-scale square wave, as RFC 6464 §3 defines it.
pub fn audio_level(samples: &[i16]) -> u8 {
    if samples.is_empty() {
        return 127;
    }
    let energy: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (energy / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 {
        return 127;
    }
    let dbov = 20.0 * rms.log10();
    (-dbov).round().clamp(0.0, 127.0) as u8
}

/// Whether a block at this level counts as voice for the V flag: louder than -50 dBov, about
/// where a quiet room's background noise lies. The router ranks by level; the flag is a hint.
pub fn voice_activity(level: u8) -> bool {
    level < 50
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::pattern::Tone;

    #[test]
    fn full_scale_square_is_zero_and_silence_is_127() {
        assert_eq!(audio_level(&[i16::MIN; 960]), 0);
        assert_eq!(audio_level(&[0; 960]), 127);
        assert_eq!(audio_level(&[]), 127);
        // One LSB of noise is about -90 dBov.
        assert_eq!(audio_level(&[1, -1, 1, -1]), 90);
    }

    #[test]
    fn a_sine_is_3_db_below_its_peak() {
        // A sine of amplitude A has RMS A/sqrt(2): peak 0.3 → 20·log10(0.3/√2) = -13.5 dBov.
        let mut loud = Tone::new(440.0);
        loud.amplitude = 0.3;
        let l = audio_level(&loud.next_frame().samples);
        assert!((13..=14).contains(&l), "{l}");
        // Ten times quieter is 20 dB lower.
        let mut quiet = Tone::new(440.0);
        quiet.amplitude = 0.03;
        let q = audio_level(&quiet.next_frame().samples);
        assert!((33..=34).contains(&q), "{q}");
        assert!(voice_activity(l) && voice_activity(q) && !voice_activity(127));
    }
}
