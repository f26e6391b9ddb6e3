//! Built-in sources: a moving test picture that carries its own frame number, and a tone.

use super::{AUDIO_FRAME_SAMPLES, AUDIO_SAMPLE_RATE, AudioFrame, VideoFrame};

/// Height of the frame-number strip at the top of each test picture.
pub const BARCODE_ROWS: u32 = 16;
const BARCODE_BITS: u32 = 16;

/// A moving picture: scrolling diagonal gradients, a bouncing square, colour ramps, and a strip
/// that encodes the frame number in 16 blocks (so a receiver can tell which source frame it
/// decoded and compare pixels exactly against [`TestPattern::frame`]).
#[derive(Debug, Clone)]
pub struct TestPattern {
    pub width: u32,
    pub height: u32,
}

impl TestPattern {
    pub fn new(width: u32, height: u32) -> Self {
        Self { width, height }
    }

    /// Picture number `n` (deterministic).
    pub fn frame(&self, n: u32) -> VideoFrame {
        let (w, h) = (self.width, self.height);
        let mut f = VideoFrame::black(w, h);
        let t = n as i64;
        let side = (h / 4).max(8) as i64;
        let sq_x = ((t * 5) % (2 * (w as i64 - side))).abs();
        let sq_x = if sq_x > w as i64 - side { 2 * (w as i64 - side) - sq_x } else { sq_x };
        let sq_y = (h as i64 - side) / 2;
        {
            let y = &mut f.data[..(w * h) as usize];
            for row in 0..h as i64 {
                for col in 0..w as i64 {
                    let mut v = 40 + (col + row + t * 3).rem_euclid(160);
                    if col >= sq_x && col < sq_x + side && row >= sq_y && row < sq_y + side {
                        v = 220;
                    }
                    y[(row * w as i64 + col) as usize] = v as u8;
                }
            }
            let block = w / BARCODE_BITS;
            for bit in 0..BARCODE_BITS {
                let on = (n >> (BARCODE_BITS - 1 - bit)) & 1 == 1;
                for row in 0..BARCODE_ROWS.min(h) {
                    for col in bit * block..(bit + 1) * block {
                        y[(row * w + col) as usize] = if on { 235 } else { 16 };
                    }
                }
            }
        }
        let (cw, ch) = VideoFrame::chroma_size(w, h);
        let ysize = (w * h) as usize;
        let csize = (cw * ch) as usize;
        for row in 0..ch {
            for col in 0..cw {
                let i = (row * cw + col) as usize;
                let in_strip = row * 2 < BARCODE_ROWS;
                f.data[ysize + i] = if in_strip { 128 } else { (64 + (col * 128 / cw)) as u8 };
                f.data[ysize + csize + i] = if in_strip { 128 } else { (64 + (row * 128 / ch)) as u8 };
            }
        }
        f
    }

    /// Reads the frame number back from a (possibly lossy) picture.
    pub fn read_frame_number(frame: &VideoFrame) -> Option<u32> {
        if frame.height < BARCODE_ROWS || frame.width < BARCODE_BITS * 4 {
            return None;
        }
        let block = frame.width / BARCODE_BITS;
        let y = frame.y();
        let mut n = 0;
        for bit in 0..BARCODE_BITS {
            let (cx, cy) = (bit * block + block / 2, BARCODE_ROWS / 2);
            let mut sum = 0u32;
            for dy in 0..4 {
                for dx in 0..4 {
                    sum += y[((cy - 2 + dy) * frame.width + cx - 2 + dx) as usize] as u32;
                }
            }
            n = (n << 1) | (sum / 16 > 128) as u32;
        }
        Some(n)
    }
}

/// A sine tone, continuous across frames.
#[derive(Debug, Clone)]
pub struct Tone {
    pub frequency: f64,
    pub amplitude: f64,
    position: u64,
}

impl Tone {
    pub fn new(frequency: f64) -> Self {
        Self { frequency, amplitude: 0.3, position: 0 }
    }

    /// The next 20 ms.
    pub fn next_frame(&mut self) -> AudioFrame {
        let samples = (0..AUDIO_FRAME_SAMPLES)
            .map(|i| {
                let t = (self.position + i as u64) as f64 / AUDIO_SAMPLE_RATE as f64;
                ((2.0 * std::f64::consts::PI * self.frequency * t).sin() * self.amplitude * i16::MAX as f64) as i16
            })
            .collect();
        self.position += AUDIO_FRAME_SAMPLES as u64;
        AudioFrame { samples }
    }
}
