//! Encode + encrypt cost of one 720p frame per video codec, as a publisher pays it: the moving
//! test pattern at 1280x720, 30 fps, 2.5 Mbit/s, each frame encoded by the real encoder
//! (libvpx VP8/VP9, OpenH264) and encrypted with SFrame suite 6 under the codec's framing.
//!
//! ```sh
//! cargo bench -p umbra-client --bench codecs                 # 150 frames per codec
//! UMBRA_CODEC_BENCH_FRAMES=300 cargo bench -p umbra-client --bench codecs
//! ```
//!
//! Prints milliseconds per frame (encode, encrypt, both) and each codec's total relative to
//! VP8; docs/performance.md has the figures. Pictures are made before timing starts. Times are
//! the thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so other processes on a shared machine
//! change them little; wall-clock time per frame is printed beside them.

use std::time::{Duration, Instant};

use umbra_client::media::pattern::TestPattern;
use umbra_client::media::{VideoCodec, VideoEncoder, VideoFrame};
use umbra_e2ee::{BaseKey, CipherSuite, EncryptionSecret, FrameEncryptor};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 720;
const FPS: u32 = 30;
const KBPS: u32 = 2500;
const WARM_UP: usize = 10;

struct Figures {
    encode: Duration,
    encrypt: Duration,
    wall: Duration,
    frames: usize,
    bytes: usize,
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec, which lives on this stack frame.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn run(codec: VideoCodec, pictures: &[VideoFrame]) -> Figures {
    let mut encoder = VideoEncoder::new(codec, WIDTH, HEIGHT, FPS, KBPS).expect("encoder");
    let secret = EncryptionSecret::new("correct horse battery staple").expect("secret");
    let base = BaseKey::derive(&secret, "bench-session");
    let suite = CipherSuite::from_id(6).expect("suite 6");
    let mut encryptor = FrameEncryptor::new(suite, &base).expect("encryptor");
    let framing = match codec {
        VideoCodec::Vp8 => umbra_e2ee::Codec::Vp8,
        VideoCodec::Vp9 => umbra_e2ee::Codec::Vp9,
        VideoCodec::H264 => umbra_e2ee::Codec::H264,
        _ => umbra_e2ee::Codec::Opaque,
    };
    let mut f = Figures { encode: Duration::ZERO, encrypt: Duration::ZERO, wall: Duration::ZERO, frames: 0, bytes: 0 };
    for (i, pic) in pictures.iter().enumerate() {
        let w0 = Instant::now();
        let t0 = thread_cpu();
        let encoded = encoder.encode(pic).expect("encode");
        let t1 = thread_cpu();
        let mut bytes = 0;
        for e in &encoded {
            bytes += encryptor.encrypt(framing, &e.data).expect("encrypt").len();
        }
        let t2 = thread_cpu();
        if i >= WARM_UP {
            f.encode += t1 - t0;
            f.encrypt += t2 - t1;
            f.wall += w0.elapsed();
            f.frames += 1;
            f.bytes += bytes;
        }
    }
    f
}

fn ms(d: Duration, n: usize) -> f64 {
    d.as_secs_f64() * 1000.0 / n as f64
}

fn main() {
    let frames: usize =
        std::env::var("UMBRA_CODEC_BENCH_FRAMES").ok().and_then(|v| v.parse().ok()).unwrap_or(150).max(1);
    let pattern = TestPattern::new(WIDTH, HEIGHT);
    let pictures: Vec<VideoFrame> = (0..(frames + WARM_UP) as u32).map(|n| pattern.frame(n)).collect();
    println!("encode + encrypt per {WIDTH}x{HEIGHT} frame, {FPS} fps, {KBPS} kbit/s, suite 6, {frames} frames");
    println!(
        "{:<6} {:>10} {:>11} {:>9} {:>8} {:>8} {:>8}",
        "codec", "encode ms", "encrypt ms", "total ms", "vs VP8", "wall ms", "kbit/s"
    );
    let mut vp8_total = None;
    for codec in VideoCodec::ALL {
        let f = run(codec, &pictures);
        let total = ms(f.encode + f.encrypt, f.frames);
        let base = *vp8_total.get_or_insert(total);
        let kbps = f.bytes as f64 * 8.0 / 1000.0 / (f.frames as f64 / FPS as f64);
        println!(
            "{:<6} {:>10.2} {:>11.3} {:>9.2} {:>7.2}x {:>8.2} {:>8.0}",
            codec.name(),
            ms(f.encode, f.frames),
            ms(f.encrypt, f.frames),
            total,
            total / base,
            ms(f.wall, f.frames),
            kbps,
        );
    }
}
