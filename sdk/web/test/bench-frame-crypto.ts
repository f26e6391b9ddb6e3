// Per-frame encrypt and decrypt time of the E2EE core on this machine's WebCrypto (Node):
// `npm run bench`. Browser figures (worker, Chromium) belong in docs/performance.md and need the
// browser harness; this is the same code path minus the worker hop.

import { FrameEncryptor, KeyRing, StreamDecryptor, suiteById } from "../src/e2ee/index.js";

const quantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

async function run(label: string, suiteId: number, size: number, frames: number): Promise<void> {
  const suite = suiteById(suiteId);
  const key = crypto.getRandomValues(new Uint8Array(32));
  const tx = await FrameEncryptor.create(suite, key);
  const ring = new KeyRing(suite);
  ring.setBaseKey(key, 0);
  const rx = new StreamDecryptor("vp8");
  const frame = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(frame.subarray(i, i + 65536)); // 64 KiB per call at most
  frame[0] = 0x31; // VP8 delta frame
  const enc: number[] = [];
  const dec: number[] = [];
  for (let i = 0; i < frames; i++) {
    let t = performance.now();
    const sealed = await tx.encrypt("vp8", frame);
    enc.push(performance.now() - t);
    t = performance.now();
    const out = await rx.decrypt(ring, sealed, 0);
    dec.push(performance.now() - t);
    if (out.status !== "decrypted") throw new Error(out.status);
  }
  const f = (xs: number[]) => `median ${quantile(xs, 0.5).toFixed(3)} ms, p99 ${quantile(xs, 0.99).toFixed(3)} ms`;
  console.log(`${label.padEnd(34)} encrypt ${f(enc)} | decrypt ${f(dec)}`);
}

await run("suite 6, 20 KB (VP8 720p delta)", 6, 20_000, 1000);
await run("suite 6, 120 KB (VP8 720p key)", 6, 120_000, 200);
await run("suite 5 (GCM), 20 KB", 5, 20_000, 1000);
await run("suite 6, 100 B (Opus packet)", 6, 100, 2000);
