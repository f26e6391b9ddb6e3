//! Encrypt/decrypt throughput of the E2EE core beside the `sframe` crate (rust-crypto
//! backend) on the suites both implement, suite 6 against the bound `openssl speed` gives for
//! AES-256-CTR plus HMAC-SHA-512 on this machine, and the PBKDF2 cost of a secret.
//!
//!     cargo bench -p umbra-e2ee --bench throughput
//!
//! UMBRA_BENCH_MS sets the measuring time per case (default 400 ms).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use sframe::frame::{EncryptedFrameView, MediaFrameView, MonotonicCounter};
use sframe::key::{DecryptionKey, EncryptionKey};
use umbra_e2ee::{BaseKey, CipherSuite, Codec, EncryptionSecret, FrameEncryptor, KeyRing, SframeKey, StreamDecryptor};

const SIZES: [usize; 4] = [160, 1_200, 16 * 1024, 100 * 1024];

fn budget() -> Duration {
    Duration::from_millis(std::env::var("UMBRA_BENCH_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(400))
}

/// Median of five runs of the nanoseconds per call of `f`.
fn ns_per_op(mut f: impl FnMut()) -> f64 {
    let warm = Instant::now();
    let mut calls = 0u64;
    while warm.elapsed() < Duration::from_millis(50) {
        f();
        calls += 1;
    }
    let per_run = budget() / 5;
    let batch = (calls * per_run.as_nanos() as u64 / 50_000_000).max(1);
    let mut runs: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                f();
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .collect();
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[2]
}

fn mbps(size: usize, ns: f64) -> f64 {
    size as f64 / ns * 1e3
}

struct Row {
    umbra: f64,
    peer: Option<f64>,
}

fn umbra_sframe(suite: CipherSuite, size: usize) -> (f64, f64) {
    let key = SframeKey::derive(suite, &[9; 32], 0x1234_5678_9abc_def0).unwrap();
    let payload = vec![0xa5u8; size];
    let mut ctr = 0u64;
    let enc = ns_per_op(|| {
        ctr += 1;
        black_box(key.encrypt(0x1234_5678_9abc_def0, ctr, &[], black_box(&payload)).unwrap());
    });
    let sealed = key.encrypt(0x1234_5678_9abc_def0, 1, &[], &payload).unwrap();
    let dec = ns_per_op(|| {
        black_box(key.decrypt(&[], black_box(&sealed)).unwrap().unwrap());
    });
    (mbps(size, enc), mbps(size, dec))
}

fn peer_sframe(suite: sframe::CipherSuite, size: usize) -> (f64, f64) {
    let enc_key = EncryptionKey::derive_from(suite, 0x1234_5678_9abc_def0u64, [9u8; 32]).unwrap();
    let dec_key = DecryptionKey::derive_from(suite, 0x1234_5678_9abc_def0u64, [9u8; 32]).unwrap();
    let payload = vec![0xa5u8; size];
    let mut counter = MonotonicCounter::default();
    let mut out = Vec::new();
    let enc = ns_per_op(|| {
        let frame = MediaFrameView::try_new(&mut counter, &payload).unwrap();
        black_box(frame.encrypt_into(&enc_key, &mut out).unwrap());
    });
    let frame = MediaFrameView::try_new(&mut counter, &payload).unwrap();
    let mut sealed = Vec::new();
    frame.encrypt_into(&enc_key, &mut sealed).unwrap();
    let mut plain = Vec::new();
    let dec = ns_per_op(|| {
        let view = EncryptedFrameView::try_new(&sealed).unwrap();
        black_box(view.decrypt_into(&dec_key, &mut plain).unwrap());
    });
    (mbps(size, enc), mbps(size, dec))
}

/// Whole-frame path as SDKs use it: VP8 framing, KID cache, replay window, mismatch rule.
fn umbra_frames(size: usize) -> (f64, f64) {
    let base = BaseKey::from_bytes([3; 32]);
    let mut tx = FrameEncryptor::new(CipherSuite::default(), &base).unwrap();
    let mut frame = vec![0xa5u8; size];
    frame[0] = 0x31; // VP8 delta frame
    let enc = ns_per_op(|| {
        black_box(tx.encrypt(Codec::Vp8, black_box(&frame)).unwrap());
    });
    let mut ring = KeyRing::new(CipherSuite::default());
    ring.set_base_key(base.clone(), Instant::now());
    let sealed: Vec<Vec<u8>> = (0..4096).map(|_| tx.encrypt(Codec::Vp8, &frame).unwrap()).collect();
    let mut rx = StreamDecryptor::new(Codec::Vp8);
    let now = Instant::now();
    let mut i = 0;
    let dec = ns_per_op(|| {
        // Fresh decryptor per 4096 frames so the replay window never rejects.
        if i == sealed.len() {
            i = 0;
            rx = StreamDecryptor::new(Codec::Vp8);
        }
        black_box(rx.decrypt(&ring, &sealed[i], now).unwrap());
        i += 1;
    });
    (mbps(size, enc), mbps(size, dec))
}

/// `openssl speed` throughput in MB/s for one EVP algorithm at 16 KB, if openssl is installed.
fn openssl_speed(alg: &str) -> Option<f64> {
    let out = Command::new("openssl")
        .args(["speed", "-elapsed", "-seconds", "2", "-bytes", "16384", "-evp", alg])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().rev().find(|l| l.to_ascii_lowercase().starts_with(&alg.to_ascii_lowercase()))?;
    let kb = line.split_whitespace().last()?.trim_end_matches('k').parse::<f64>().ok()?;
    Some(kb * 1000.0 / 1e6)
}

fn print_table(title: &str, peer_name: &str, rows: &[(usize, Row)]) {
    println!("\n{title}");
    println!("{:>8} | {:>12} | {:>12} | {:>7}", "size", "umbra MB/s", format!("{peer_name} MB/s"), "ratio");
    for (size, r) in rows {
        match r.peer {
            Some(p) => println!("{size:>8} | {:>12.1} | {p:>12.1} | {:>6.2}x", r.umbra, r.umbra / p),
            None => println!("{size:>8} | {:>12.1} | {:>12} | {:>7}", r.umbra, "-", "-"),
        }
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would run us with no arguments.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    println!("umbra-e2ee throughput, {} ms per case, median of 5 runs", budget().as_millis());
    for (name, ours, theirs) in [
        (
            "suite 1 AES_128_CTR_HMAC_SHA256_80",
            CipherSuite::Aes128CtrHmacSha256_80,
            sframe::CipherSuite::AesCtr128HmacSha256_80,
        ),
        ("suite 5 AES_256_GCM_SHA512_128", CipherSuite::Aes256GcmSha512_128, sframe::CipherSuite::AesGcm256Sha512),
    ] {
        let (mut enc, mut dec) = (Vec::new(), Vec::new());
        for size in SIZES {
            let (ue, ud) = umbra_sframe(ours, size);
            let (pe, pd) = peer_sframe(theirs, size);
            enc.push((size, Row { umbra: ue, peer: Some(pe) }));
            dec.push((size, Row { umbra: ud, peer: Some(pd) }));
        }
        print_table(&format!("{name}: encrypt"), "sframe", &enc);
        print_table(&format!("{name}: decrypt"), "sframe", &dec);
    }

    let bound = match (openssl_speed("aes-256-ctr"), openssl_speed("sha512")) {
        (Some(aes), Some(sha)) => {
            let b = 1.0 / (1.0 / aes + 1.0 / sha);
            println!(
                "\nopenssl speed at 16 KB: AES-256-CTR {aes:.0} MB/s, SHA-512 {sha:.0} MB/s => CTR+HMAC bound {b:.0} MB/s"
            );
            Some(b)
        }
        _ => {
            println!("\nopenssl not found: no bound for suite 6");
            None
        }
    };
    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    for size in SIZES {
        let (e, d) = umbra_sframe(CipherSuite::Aes256CtrHmacSha512_80, size);
        enc.push((size, Row { umbra: e, peer: bound.filter(|_| size == 16 * 1024) }));
        dec.push((size, Row { umbra: d, peer: bound.filter(|_| size == 16 * 1024) }));
    }
    print_table(
        "suite 6 AES_256_CTR_HMAC_SHA512_80 (default): encrypt, ratio at 16 KB vs openssl bound",
        "openssl",
        &enc,
    );
    print_table(
        "suite 6 AES_256_CTR_HMAC_SHA512_80 (default): decrypt, ratio at 16 KB vs openssl bound",
        "openssl",
        &dec,
    );

    let (mut enc, mut dec) = (Vec::new(), Vec::new());
    for size in SIZES {
        let (e, d) = umbra_frames(size);
        enc.push((size, Row { umbra: e, peer: None }));
        dec.push((size, Row { umbra: d, peer: None }));
    }
    print_table("whole VP8 frames, suite 6, FrameEncryptor", "-", &enc);
    print_table("whole VP8 frames, suite 6, StreamDecryptor (KID cache, replay window)", "-", &dec);

    let secret = EncryptionSecret::new("correct horse battery staple").unwrap();
    let mut times: Vec<Duration> = (0..5)
        .map(|_| {
            let t = Instant::now();
            black_box(BaseKey::derive(&secret, "1_session"));
            t.elapsed()
        })
        .collect();
    times.sort();
    println!(
        "\nPBKDF2-HMAC-SHA256, 600 000 iterations (secret -> base key): median {:.1} ms",
        times[2].as_secs_f64() * 1e3
    );
}
