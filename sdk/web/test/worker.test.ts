// The encoded-transform worker's logic, driven as the browser would drive it: fake encoded
// frames through the RTCRtpScriptTransformer's streams and through transferred streams, a fake
// clock, and the messages it posts to the page.

import { test } from "node:test";
import assert from "node:assert/strict";
import { bytesToHex, decodeHeader, deriveBaseKey, hexToBytes } from "../src/e2ee/index.js";
import type { EncodedFrame, ScriptTransformer } from "../src/worker/encoded-frame.js";
import type { FromWorker, ToWorker } from "../src/worker/protocol.js";
import { WorkerCore } from "../src/worker/worker-core.js";
import { readVectors } from "./support.js";

class FakeFrame implements EncodedFrame {
  constructor(
    public data: ArrayBuffer,
    readonly type: string | undefined,
    private readonly mimeType: string | undefined,
    private readonly payloadType?: number,
  ) {}
  metadataReads = 0;
  getMetadata() {
    this.metadataReads++;
    return { ...(this.mimeType === undefined ? {} : { mimeType: this.mimeType }), ...(this.payloadType === undefined ? {} : { payloadType: this.payloadType }) };
  }
}

/** One side of a simulated RTCRtpScriptTransformer: frames written to `push` come out of `out`. */
function fakeTransformer(options: unknown) {
  const out: EncodedFrame[] = [];
  let push!: (f: EncodedFrame) => void;
  let end!: () => void;
  const readable = new ReadableStream<EncodedFrame>({
    start(c) {
      push = (f) => c.enqueue(f);
      end = () => c.close();
    },
  });
  const writable = new WritableStream<EncodedFrame>({ write: (f) => void out.push(f) });
  const calls = { generateKeyFrame: 0, sendKeyFrameRequest: 0 };
  const transformer: ScriptTransformer = {
    readable,
    writable,
    options,
    generateKeyFrame: async () => void calls.generateKeyFrame++,
    sendKeyFrameRequest: async () => void calls.sendKeyFrameRequest++,
  };
  return { transformer, out, push: (f: EncodedFrame) => push(f), end: () => end(), calls };
}

function harness() {
  let now = 0;
  const posted: FromWorker[] = [];
  const core = new WorkerCore({ now: () => now, post: (m) => void posted.push(m) });
  let requestId = 0;
  return {
    core,
    posted,
    advance: (ms: number) => (now += ms),
    setKey: async (baseKey: Uint8Array, suite = 6) => {
      const msg: ToWorker = { type: "setKey", requestId: ++requestId, baseKey, suite };
      await core.handleMessage(msg);
      assert.deepEqual(posted.at(-1), { type: "keySet", requestId });
    },
    /** Waits until this worker has handled `n` frames in total (CPU may be busy: no fixed sleeps). */
    handled: async (n: number) => {
      for (let i = 0; i < 500 && core.framesHandled < n; i++) await settle();
      assert.equal(core.framesHandled, n);
    },
    events: () => posted.filter((m) => m.type === "event" && m.event !== "firstFrameDecrypted").map((m) => (m as { event: string }).event),
    firstFrameEvents: () => posted.filter((m) => m.type === "event" && m.event === "firstFrameDecrypted").length,
  };
}

const settle = () => new Promise((r) => setTimeout(r, 20));
/** Waits until `list` has `n` entries (frames go through async WebCrypto work). */
async function until(list: unknown[], n: number): Promise<void> {
  for (let i = 0; i < 200 && list.length < n; i++) await settle();
  assert.equal(list.length, n);
}
const keyA = new Uint8Array(32).fill(1);
const keyB = new Uint8Array(32).fill(2);
const vp8Delta = (i: number) => Uint8Array.from([0x31, 0x02, 0x00, i, 1, 2, 3, 4, 5, 6, 7, 8]).buffer;
const vp8Key = (i: number) => Uint8Array.from([0x30, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00, i, 9, 9]).buffer;

test("sender and receiver transformers round-trip frames; real H.264 vector frames via metadata mimeType", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  await tx.setKey(keyA);
  await rx.setKey(keyA);
  const s = fakeTransformer({ transformId: "pub-video", operation: "encrypt", mimeType: "video/VP8" });
  const r = fakeTransformer({ transformId: "sub-video", operation: "decrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  rx.core.attachScriptTransformer(r.transformer);

  const v = readVectors("umbra-e2ee-vectors.json");
  const h264 = v.frames.filter((f: { codec: string; cipher_suite: number }) => f.codec === "h264" && f.cipher_suite === 6);
  const inputs = [vp8Key(0), vp8Delta(1), ...h264.map((f: { plaintext: string }) => hexToBytes(f.plaintext).slice().buffer)];
  // The negotiated codec says VP8, but the H.264 frames say so in their metadata, which wins.
  // A sender switches codec with a new encoder, which starts with a key frame.
  inputs.forEach((d, i) => s.push(new FakeFrame(d.slice(0), i === 0 || i === 2 ? "key" : "delta", i < 2 ? undefined : "video/H264")));
  await until(s.out, inputs.length);
  for (let i = 0; i < inputs.length; i++) {
    assert.notEqual(bytesToHex(new Uint8Array(s.out[i]!.data)), bytesToHex(new Uint8Array(inputs[i]!)), "encrypted");
    r.push(s.out[i]!);
  }
  await until(r.out, inputs.length);
  assert.deepEqual(r.out.map((f) => bytesToHex(new Uint8Array(f.data))), inputs.map((d) => bytesToHex(new Uint8Array(d))));
  assert.deepEqual(rx.events(), []);
  assert.equal(rx.firstFrameEvents(), 1, "firstFrameDecrypted once per transform");
  assert.equal(r.calls.sendKeyFrameRequest, 0);
});

test("mismatch: one event, frames dropped; after setKey(right): one match event and a key frame request", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  await tx.setKey(keyA);
  await rx.setKey(keyB);
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "video/VP8" });
  const r = fakeTransformer({ transformId: "r", operation: "decrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  rx.core.attachScriptTransformer(r.transformer);
  for (let i = 0; i < 60; i++) {
    s.push(new FakeFrame(vp8Delta(i), "delta", "video/VP8"));
    await until(s.out, i + 1);
    r.push(s.out[i]!);
    await rx.handled(i + 1);
    rx.advance(33);
  }
  assert.equal(r.out.length, 0, "no frame reaches the decoder");
  assert.deepEqual(rx.events(), ["encryptionSecretMismatch"]);
  assert.equal(rx.firstFrameEvents(), 0);

  await rx.setKey(keyA);
  s.push(new FakeFrame(vp8Delta(60), "delta", "video/VP8"));
  await until(s.out, 61);
  r.push(s.out[60]!);
  await until(r.out, 1);
  assert.deepEqual(rx.events(), ["encryptionSecretMismatch", "encryptionSecretMatch"]);
  assert.equal(r.calls.sendKeyFrameRequest, 1, "a receiver that recovers on a delta frame asks for a key frame");
});

test("a publisher that declares E2EE but sends plain VP8: one streamNotEncrypted, never a mismatch, nothing decoded; match once it encrypts", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  await tx.setKey(keyA);
  await rx.setKey(keyA);
  const r = fakeTransformer({ transformId: "r", operation: "decrypt", mimeType: "video/VP8" });
  rx.core.attachScriptTransformer(r.transformer);
  // Plain VP8 delta frames whose bytes after the payload header vary like compressed data: read
  // as SFrame, their KIDs and counters jump around (what no encrypter writes).
  let x = 0x2545f491;
  const plain = () => {
    const body = Array.from({ length: 80 }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
    // A delta frame's 3-byte frame tag (kept clear by the VP8 framing), then the bool-coded data.
    return Uint8Array.from([0x31, 0x02, 0x00, ...body]).buffer;
  };
  for (let i = 0; i < 60; i++) {
    r.push(new FakeFrame(plain(), "delta", "video/VP8"));
    await rx.handled(i + 1);
    rx.advance(33);
  }
  assert.equal(r.out.length, 0, "no plain frame reaches the decoder");
  // Frames that do not even parse are reported (rate-limited) before the verdict; the verdict is
  // the one event that matters and it comes once.
  const verdicts = () => rx.events().filter((e) => e !== "decryptionInternalError");
  assert.deepEqual(verdicts(), ["streamNotEncrypted"]);
  assert.equal(rx.firstFrameEvents(), 0);

  // The publisher starts encrypting (e.g. a fixed client): frames decrypt, match is reported.
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  s.push(new FakeFrame(vp8Key(0), "key", "video/VP8"));
  await until(s.out, 1);
  r.push(s.out[0]!);
  await until(r.out, 1);
  assert.deepEqual(verdicts(), ["streamNotEncrypted", "encryptionSecretMatch"]);
  assert.equal(rx.firstFrameEvents(), 1);
});

test("a secret change at the sender: new KID, counter 0, and a key frame from the encoder", { timeout: 30_000 }, async () => {
  const tx = harness();
  await tx.setKey(keyA);
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  s.push(new FakeFrame(vp8Delta(0), "delta", undefined));
  s.push(new FakeFrame(vp8Delta(1), "delta", undefined));
  await until(s.out, 2);
  const hdr = (f: EncodedFrame) => decodeHeader(new Uint8Array(f.data).subarray(3)).header;
  assert.deepEqual([hdr(s.out[0]!).ctr, hdr(s.out[1]!).ctr], [0n, 1n]);
  await tx.setKey(keyB);
  assert.equal(s.calls.generateKeyFrame, 1);
  s.push(new FakeFrame(vp8Delta(2), "delta", undefined));
  await until(s.out, 3);
  assert.notEqual(hdr(s.out[2]!).kid, hdr(s.out[0]!).kid);
  assert.equal(hdr(s.out[2]!).ctr, 0n);
  await tx.setKey(keyB);
  assert.equal(s.calls.generateKeyFrame, 1, "the same secret again is no change");
});

test("without a key the sender sends nothing, and unprotectable frames raise a rate-limited error", { timeout: 30_000 }, async () => {
  const tx = harness();
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "video/H264" });
  tx.core.attachScriptTransformer(s.transformer);
  s.push(new FakeFrame(Uint8Array.from([0, 0, 1, 0x65, 0x88, 0x80, 1]).buffer, "key", undefined));
  await tx.handled(1);
  assert.equal(s.out.length, 0, "plaintext never leaves");
  await tx.setKey(keyA);
  // An H.264 frame with only parameter sets has no unit to protect: refused.
  for (let i = 0; i < 3; i++) s.push(new FakeFrame(Uint8Array.from([0, 0, 0, 1, 0x67, 0x42, 0, 0x1f]).buffer, "key", undefined));
  await tx.handled(4);
  assert.equal(s.out.length, 0);
  assert.deepEqual(tx.events(), ["encryptionInternalError"]);
});

test("createEncodedStreams path: streams arrive by message; key frame needs go to the page", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  const secret = "correct horse battery staple";
  const key = await deriveBaseKey(secret, "session-x", 1000);
  await tx.setKey(key);
  const s = fakeTransformer(null);
  const r = fakeTransformer(null);
  await tx.core.handleMessage({ type: "streams", transformId: "s", operation: "encrypt", mimeType: "audio/opus", readable: s.transformer.readable, writable: s.transformer.writable });
  await rx.core.handleMessage({ type: "streams", transformId: "r", operation: "decrypt", mimeType: "audio/opus", readable: r.transformer.readable, writable: r.transformer.writable });
  s.push(new FakeFrame(Uint8Array.from([0xfc, 1, 2, 3]).buffer, undefined, undefined));
  await until(s.out, 1);
  r.push(s.out[0]!);
  await rx.handled(1);
  assert.equal(r.out.length, 0, "receiver has no key yet");
  await rx.setKey(key);
  s.push(new FakeFrame(Uint8Array.from([0xfc, 4, 5, 6]).buffer, undefined, undefined));
  await until(s.out, 2);
  r.push(s.out[1]!);
  await until(r.out, 1);
  assert.deepEqual(r.out.map((f) => bytesToHex(new Uint8Array(f.data))), ["fc040506"]);
  assert.equal(new Uint8Array(s.out[1]!.data)[0], 0xfc, "Opus TOC byte stays readable");
  await tx.setKey(new Uint8Array(32).fill(9));
  assert.ok(tx.posted.some((m) => m.type === "keyFrameNeeded" && m.transformId === "s" && m.operation === "encrypt"));
  await tx.core.handleMessage({ type: "close", transformId: "s" });
  assert.equal(tx.core.transformCount, 0);
});

test("an invalid suite is reported back to the page", { timeout: 30_000 }, async () => {
  const h = harness();
  await h.core.handleMessage({ type: "setKey", requestId: 7, baseKey: keyA, suite: 99 });
  assert.deepEqual(h.posted.at(-1), { type: "keyError", requestId: 7, name: "UnsupportedCipherSuite", message: "unsupported SFrame cipher suite 99" });
});

test("transformer without Umbra options is refused", { timeout: 30_000 }, () => {
  const h = harness();
  assert.throws(() => h.core.attachScriptTransformer(fakeTransformer({ foo: 1 }).transformer), /without Umbra transform options/);
});

test("frames without a MIME type: the payload type's negotiated codec, else the transform's", { timeout: 30_000 }, async () => {
  const tx = harness();
  await tx.setKey(keyA);
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "" });
  tx.core.attachScriptTransformer(s.transformer);
  await tx.core.handleMessage({ type: "codec", transformId: "s", mimeType: "video/VP8", payloadTypes: { 96: "video/VP8", 102: "video/H264" } });
  const h264 = Uint8Array.from([0, 0, 0, 1, 0x65, 0x88, 0x80, 0x11, 0x22, 0x33]).buffer;
  s.push(new FakeFrame(h264.slice(0), "key", undefined, 102));
  s.push(new FakeFrame(vp8Key(1), "key", undefined, 96));
  s.push(new FakeFrame(vp8Delta(2), "delta", undefined, 96));
  await until(s.out, 3);
  const [a, b, c] = s.out.map((f) => new Uint8Array(f.data));
  // H.264 framing: start code and slice head kept, region escaped and terminated with 0x80.
  assert.deepEqual([...a!.subarray(0, 6)], [0, 0, 0, 1, 0x65, 0x88]);
  assert.equal(a![a!.length - 1], 0x80);
  // VP8 framing for payload type 96: the 10-byte key frame header, the 3-byte delta header.
  assert.deepEqual([...b!.subarray(0, 10)], [...new Uint8Array(vp8Key(1)).subarray(0, 10)]);
  assert.deepEqual([...c!.subarray(0, 3)], [0x31, 0x02, 0x00]);

  // A receiver's frame without metadata: the transform's negotiated codec.
  const rx = harness();
  await rx.setKey(keyA);
  const r = fakeTransformer({ transformId: "r", operation: "decrypt", mimeType: "video/VP8" });
  rx.core.attachScriptTransformer(r.transformer);
  r.push(new FakeFrame(s.out[2]!.data, "delta", undefined, undefined));
  await until(r.out, 1);
  assert.deepEqual(new Uint8Array(r.out[0]!.data), new Uint8Array(vp8Delta(2)));
});

test("a sender reads frame metadata on key frames only: delta frames keep the key frame's codec", { timeout: 30_000 }, async () => {
  const tx = harness();
  await tx.setKey(keyA);
  const s = fakeTransformer({ transformId: "s", operation: "encrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  const frames = [new FakeFrame(vp8Key(0), "key", "video/VP8"), ...[1, 2, 3].map((i) => new FakeFrame(vp8Delta(i), "delta", "video/VP8"))];
  for (const f of frames) s.push(f);
  await until(s.out, 4);
  assert.deepEqual(frames.map((f) => f.metadataReads), [1, 0, 0, 0]);
  // A codec message (renegotiation) makes the next frame read its metadata again.
  await tx.core.handleMessage({ type: "codec", transformId: "s", mimeType: "video/VP8", payloadTypes: {} });
  const next = new FakeFrame(vp8Delta(4), "delta", "video/VP8");
  s.push(next);
  await until(s.out, 5);
  assert.equal(next.metadataReads, 1);
});

test("a transform that continues another (media_restart) keeps the sender's KID and counter and the receiver's state, even if the old one closed first", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  await tx.setKey(keyA);
  await rx.setKey(keyA);
  const hdr = (f: EncodedFrame) => decodeHeader(new Uint8Array(f.data).subarray(3)).header;
  const s1 = fakeTransformer({ transformId: "pub-video-1", operation: "encrypt", mimeType: "video/VP8" });
  const r1 = fakeTransformer({ transformId: "sub-video-1", operation: "decrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s1.transformer);
  rx.core.attachScriptTransformer(r1.transformer);
  for (let i = 0; i < 3; i++) s1.push(new FakeFrame(vp8Delta(i), "delta", "video/VP8"));
  await until(s1.out, 3);
  // Decrypting replaces a frame's data: the receivers get copies of what was sent.
  const sent1 = s1.out.map((f) => f.data.slice(0));
  const kid1 = hdr(s1.out[0]!).kid;
  for (const d of sent1) r1.push(new FakeFrame(d.slice(0), "delta", "video/VP8"));
  await until(r1.out, 3);

  // The page closes the old transforms before the new ones reach the worker (the order the
  // browser may deliver them in); the new ones still continue them.
  await tx.core.handleMessage({ type: "close", transformId: "pub-video-1" });
  await rx.core.handleMessage({ type: "close", transformId: "sub-video-1" });
  const s2 = fakeTransformer({ transformId: "pub-video-2", operation: "encrypt", mimeType: "video/VP8", continues: "pub-video-1" });
  const r2 = fakeTransformer({ transformId: "sub-video-2", operation: "decrypt", mimeType: "video/VP8", continues: "sub-video-1" });
  tx.core.attachScriptTransformer(s2.transformer);
  rx.core.attachScriptTransformer(r2.transformer);
  for (let i = 3; i < 6; i++) s2.push(new FakeFrame(vp8Delta(i), "delta", "video/VP8"));
  await until(s2.out, 3);
  assert.deepEqual(s2.out.map((f) => hdr(f).ctr), [3n, 4n, 5n], "the counter goes on");
  assert.equal(hdr(s2.out[0]!).kid, kid1, "under the same KID");
  for (const f of s2.out) r2.push(f);
  await until(r2.out, 3);
  // The receiver kept its replay window: an old frame replayed into the new transform is refused.
  r2.push(new FakeFrame(sent1[0]!.slice(0), "delta", "video/VP8"));
  await rx.handled(7);
  assert.equal(r2.out.length, 3, "a replayed frame is not passed on");
  assert.deepEqual(rx.events(), [], "no mismatch because of the move");
  assert.equal(rx.firstFrameEvents(), 1, "the subscriber's first frame was reported once, not again");

  // Without `continues`, a new sender transform starts its own counter (what the test above
  // rules out): this is the check that can fail.
  const s3 = fakeTransformer({ transformId: "pub-video-3", operation: "encrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s3.transformer);
  s3.push(new FakeFrame(vp8Delta(9), "delta", "video/VP8"));
  await until(s3.out, 1);
  assert.equal(hdr(s3.out[0]!).ctr, 0n);
});

test("simulcast (issue 13): the frames of three layers through one sender transform share one SFrame KID and never reuse a counter; a receiver fed one layer, then another from its key frame (a router's switch), decrypts every frame with no event", { timeout: 30_000 }, async () => {
  const tx = harness();
  const rx = harness();
  await tx.setKey(keyA);
  await rx.setKey(keyA);
  // Chromium and Firefox hand a simulcast sender's frames of every layer to its one transform,
  // interleaved as the encoders produce them.
  const s = fakeTransformer({ transformId: "pub-video", operation: "encrypt", mimeType: "video/VP8" });
  tx.core.attachScriptTransformer(s.transformer);
  const rids = ["q", "h", "f"];
  const FRAMES = 30;
  const sent: { rid: string; i: number; plain: string }[] = [];
  for (let i = 0; i < FRAMES; i++) {
    for (const rid of rids) {
      const key = i % 10 === 0;
      const data = key ? vp8Key(i) : vp8Delta(i);
      const tagged = new Uint8Array(data.byteLength + 1);
      tagged.set(new Uint8Array(data));
      tagged[data.byteLength] = rids.indexOf(rid);
      sent.push({ rid, i, plain: bytesToHex(tagged) });
      s.push(new FakeFrame(tagged.buffer, key ? "key" : "delta", "video/VP8"));
    }
  }
  await until(s.out, FRAMES * 3);
  const headers = s.out.map((f, k) => decodeHeader(new Uint8Array(f.data).subarray(vp8HeaderSkip(sent, k))).header);
  assert.equal(new Set(headers.map((h) => h.kid)).size, 1, "one KID for all layers");
  const ctrs = headers.map((h) => h.ctr);
  assert.equal(new Set(ctrs).size, ctrs.length, "no counter used twice across layers");

  // The router forwards 'f' first, then from frame 10 (a key frame of every layer) 'q', then
  // from frame 20 'h' again... each switch at a key frame of the new layer.
  const r = fakeTransformer({ transformId: "sub-video", operation: "decrypt", mimeType: "video/VP8" });
  rx.core.attachScriptTransformer(r.transformer);
  const plan = (i: number) => (i < 10 ? "f" : i < 20 ? "q" : "h");
  const forwarded = s.out.filter((_, k) => sent[k]!.rid === plan(sent[k]!.i));
  const expected = sent.filter((x) => x.rid === plan(x.i)).map((x) => x.plain);
  for (const f of forwarded) r.push(f);
  await until(r.out, FRAMES);
  assert.deepEqual(r.out.map((f) => bytesToHex(new Uint8Array(f.data))), expected);
  assert.deepEqual(rx.events(), [], "no mismatch, no error across layer switches");
  assert.equal(r.calls.sendKeyFrameRequest, 0, "nothing was dropped, so no key frame was asked for");
});

/** VP8 frames keep their payload header in clear (10 bytes for a key frame, 3 for a delta). */
function vp8HeaderSkip(sent: { plain: string }[], k: number): number {
  return (parseInt(sent[k]!.plain.slice(0, 2), 16) & 1) === 0 ? 10 : 3;
}
