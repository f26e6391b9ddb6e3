// The page's E2EE host with the real worker logic behind a fake Worker (messages delivered
// in-process, structured-cloned like postMessage): both transform paths, the key round trip, and
// E2EE events reaching the right subscriber callback.

import { test } from "node:test";
import assert from "node:assert/strict";
import { E2eeHost, type TransformTarget, type WorkerLike } from "../src/media/e2ee-host.js";
import type { EncodedFrame, ScriptTransformer } from "../src/worker/encoded-frame.js";
import type { FromWorker, ToWorker, TransformOptions } from "../src/worker/protocol.js";
import { WorkerCore } from "../src/worker/worker-core.js";
import { detectE2eeSupport } from "../src/api/support.js";

class InProcessWorker implements WorkerLike {
  private readonly listeners: ((e: MessageEvent<FromWorker>) => void)[] = [];
  readonly core: WorkerCore;
  now = 0;
  terminated = false;
  constructor() {
    this.core = new WorkerCore({ now: () => this.now, post: (m) => queueMicrotask(() => this.listeners.forEach((l) => l({ data: structuredClone(m) } as MessageEvent<FromWorker>))) });
  }
  postMessage(message: ToWorker): void {
    // Streams cannot be cloned without transfer in this fake; pass them as they are.
    const m = message.type === "streams" ? message : structuredClone(message);
    queueMicrotask(() => void this.core.handleMessage(m));
  }
  addEventListener(type: string, l: (e: any) => void): void {
    if (type === "message") this.listeners.push(l);
  }
  terminate(): void {
    this.terminated = true;
  }
}

/** Simulates one encoded stream of a sender or receiver: frames in, frames out. */
function encodedPipe() {
  const out: EncodedFrame[] = [];
  let push!: (f: EncodedFrame) => void;
  const readable = new ReadableStream<EncodedFrame>({ start: (c) => void (push = (f) => c.enqueue(f)) });
  const writable = new WritableStream<EncodedFrame>({ write: (f) => void out.push(f) });
  return { readable, writable, out, push: (f: EncodedFrame) => push(f) };
}

const frame = (bytes: number[], type?: string): EncodedFrame => ({ data: Uint8Array.from(bytes).buffer, ...(type ? { type } : {}), getMetadata: () => ({}) });
const wait = async (cond: () => boolean, what = String(cond)) => {
  for (let i = 0; i < 300 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(cond(), `condition not reached: ${what}`);
};

test("script-transform path: RTCRtpScriptTransform carries the options to the worker; frames round-trip; events reach the handler", { timeout: 30_000 }, async () => {
  const txWorker = new InProcessWorker();
  const rxWorker = new InProcessWorker();
  const pipes = new Map<string, ReturnType<typeof encodedPipe> & { calls: number }>();
  // The browser's RTCRtpScriptTransform fires `rtctransform` in the worker with these options.
  const ScriptTransform = function (this: unknown, worker: WorkerLike, options: TransformOptions) {
    const pipe = { ...encodedPipe(), calls: 0 };
    pipes.set(options.transformId, pipe);
    const transformer: ScriptTransformer = {
      readable: pipe.readable, writable: pipe.writable, options: structuredClone(options),
      generateKeyFrame: async () => void pipe.calls++, sendKeyFrameRequest: async () => void pipe.calls++,
    };
    (worker as InProcessWorker).core.attachScriptTransformer(transformer);
  } as unknown as new (w: WorkerLike, o: TransformOptions) => unknown;

  const tx = new E2eeHost(txWorker, "script-transform", ScriptTransform);
  const rx = new E2eeHost(rxWorker, "script-transform", ScriptTransform);
  const keyA = new Uint8Array(32).fill(3);
  await tx.setKey(keyA, 6);
  await rx.setKey(new Uint8Array(32).fill(4), 6);

  const sender: TransformTarget = {};
  const receiver: TransformTarget = {};
  const rxEvents: string[] = [];
  const sid = tx.attach(sender, "encrypt", "", () => undefined);
  const rid = rx.attach(receiver, "decrypt", "", (e) => rxEvents.push(e));
  assert.ok(sender.transform && receiver.transform, "the transform is set on the sender and the receiver");
  const s = pipes.get(sid)!;
  const r = pipes.get(rid)!;

  // Before the codec is known, frames without metadata are dropped, never sent in the clear.
  s.push(frame([0x31, 1, 2, 3, 4], "delta"));
  await wait(() => txWorker.core.framesHandled === 1);
  assert.equal(s.out.length, 0);
  tx.setCodec(sid, "video/VP8");
  rx.setCodec(rid, "video/VP8");
  // Messages are delivered asynchronously, and a stream can hand a frame to its transform
  // synchronously: let the codec messages land first (in a browser, negotiation precedes media).
  await new Promise((res) => setTimeout(res, 0));
  for (let i = 0; i < 12; i++) {
    s.push(frame([0x31, 1, 2, i, 4, 5], "delta"));
    rxWorker.now += 60;
    await wait(() => s.out.length === i + 1);
    r.push(s.out[i]!);
    await wait(() => rxWorker.core.framesHandled === i + 1);
  }
  await wait(() => rxEvents.includes("encryptionSecretMismatch"));
  assert.equal(r.out.length, 0);
  await rx.setKey(keyA, 6);
  s.push(frame([0x31, 9, 9, 9], "delta"));
  await wait(() => s.out.length === 13);
  r.push(s.out[12]!);
  await wait(() => r.out.length === 1);
  assert.deepEqual([...new Uint8Array(r.out[0]!.data)], [0x31, 9, 9, 9]);
  await wait(() => rxEvents.includes("encryptionSecretMatch"));
  assert.deepEqual(rxEvents, ["encryptionSecretMismatch", "encryptionSecretMatch", "firstFrameDecrypted"]);
  assert.equal(r.calls, 1, "the recovered receiver asked for a key frame");
  // A new secret at the sender makes its encoder produce a key frame.
  await tx.setKey(new Uint8Array(32).fill(5), 6);
  assert.equal(s.calls, 1);
});

test("encoded-streams path: the streams go to the worker; key frame needs come back to the page", { timeout: 30_000 }, async () => {
  const w = new InProcessWorker();
  const host = new E2eeHost(w, "encoded-streams", null);
  await host.setKey(new Uint8Array(32).fill(1), 6);
  const pipe = encodedPipe();
  let keyFrames = 0;
  const sender: TransformTarget = { createEncodedStreams: () => ({ readable: pipe.readable, writable: pipe.writable }) };
  host.attach(sender, "encrypt", "audio/opus", () => undefined, () => keyFrames++);
  pipe.push(frame([0xfc, 1, 2, 3]));
  await wait(() => pipe.out.length === 1);
  assert.equal(new Uint8Array(pipe.out[0]!.data)[0], 0xfc);
  assert.ok(pipe.out[0]!.data.byteLength > 4 + 10, "header and tag added");
  await host.setKey(new Uint8Array(32).fill(2), 6);
  await wait(() => keyFrames === 1);
  assert.throws(() => host.attach({}, "encrypt", "", () => undefined), { name: "OT_UNSUPPORTED_BROWSER" });
  await assert.rejects(host.setKey(new Uint8Array(32), 42), { name: "OT_ENCRYPTION_ERROR" });
  host.terminate();
  assert.equal(w.terminated, true);
});

test("E2EE support detection", { timeout: 30_000 }, () => {
  const subtle = { deriveBits() {}, encrypt() {} };
  function Fn() {}
  assert.deepEqual(detectE2eeSupport({ crypto: { subtle }, Worker: Fn, RTCRtpScriptTransform: Fn }), { supported: true, path: "script-transform", missing: [] });
  const chromiumOld = { crypto: { subtle }, Worker: Fn, RTCRtpSender: { prototype: { createEncodedStreams() {} } } };
  assert.equal(detectE2eeSupport(chromiumOld).path, "encoded-streams");
  const insecure = detectE2eeSupport({ isSecureContext: false, Worker: Fn, RTCRtpScriptTransform: Fn });
  assert.equal(insecure.supported, false);
  assert.match(insecure.missing[0]!, /secure context/);
  assert.equal(detectE2eeSupport({ crypto: { subtle }, Worker: Fn }).supported, false);
  // Node has WebCrypto but no WebRTC.
  assert.equal(detectE2eeSupport().supported, false);
});

test("the worker starts from the SDK's URL, through a blob bootstrap when that is another origin", async () => {
  const { setSdkBaseUrl, startWorker } = await import("../src/api/environment.js");
  const started: { url: string; blobText?: string }[] = [];
  const blobs = new Map<string, Blob>();
  const fakeGlobal = (origin: string) => ({
    location: { origin },
    Blob,
    URL: { createObjectURL: (b: Blob) => (blobs.set("blob:1", b), "blob:1"), revokeObjectURL: () => undefined },
    Worker: function (this: object, url: string) {
      started.push({ url });
    },
  });
  setSdkBaseUrl("https://video.example.com/sdk/umbra.js");
  startWorker(fakeGlobal("https://video.example.com"));
  startWorker(fakeGlobal("https://app.example.org"));
  setSdkBaseUrl(null);
  assert.deepEqual(started.map((s) => s.url), ["https://video.example.com/sdk/umbra-e2ee-worker.js", "blob:1"]);
  assert.equal(await blobs.get("blob:1")!.text(), 'importScripts("https://video.example.com/sdk/umbra-e2ee-worker.js");');
});
