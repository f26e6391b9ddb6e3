//! Measures of decoded media: PSNR of pictures, the dominant frequency and level of audio.

use super::VideoFrame;

/// PSNR in dB of `decoded` against `reference` over all three planes; `None` if sizes differ.
/// Identical pictures give `f64::INFINITY`.
pub fn psnr(reference: &VideoFrame, decoded: &VideoFrame) -> Option<f64> {
    if reference.width != decoded.width || reference.height != decoded.height {
        return None;
    }
    let se: f64 = reference.data.iter().zip(&decoded.data).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let mse = se / reference.data.len() as f64;
    Some(if mse == 0.0 { f64::INFINITY } else { 10.0 * (255.0f64 * 255.0 / mse).log10() })
}

/// Power of `samples` at `freq` (Goertzel).
fn goertzel(samples: &[i16], freq: f64, rate: f64) -> f64 {
    let k = 2.0 * (2.0 * std::f64::consts::PI * freq / rate).cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s = x as f64 + k * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    s1 * s1 + s2 * s2 - k * s1 * s2
}

/// The strongest frequency between 50 Hz and 4 kHz, to 5 Hz.
pub fn dominant_frequency(samples: &[i16], rate: u32) -> Option<f64> {
    if samples.len() < 1024 {
        return None;
    }
    (10..=800)
        .map(|i| i as f64 * 5.0)
        .map(|f| (f, goertzel(samples, f, rate as f64)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(f, _)| f)
}

/// RMS level relative to full scale, in dBFS.
pub fn rms_dbfs(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return f64::NEG_INFINITY;
    }
    let ms = samples.iter().map(|s| (*s as f64 / i16::MAX as f64).powi(2)).sum::<f64>() / samples.len() as f64;
    10.0 * ms.log10()
}
