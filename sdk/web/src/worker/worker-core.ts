// The encoded-transform worker's logic, free of worker globals so that Node tests drive it with
// fake frames and a fake clock. One WorkerCore per worker = per session: one KeyRing shared by
// all received streams, one FrameEncryptor per sending track, one StreamDecryptor per received
// track.

import { E2eeError, FrameError } from "../e2ee/errors.js";
import { FrameEncryptor } from "../e2ee/encryptor.js";
import { StreamDecryptor } from "../e2ee/decryptor.js";
import { KeyRing } from "../e2ee/keyring.js";
import { codecFromMimeType, type Codec } from "../e2ee/framing/index.js";
import { suiteById, type CipherSuite } from "../e2ee/suite.js";
import type { E2eeEvent } from "../e2ee/mismatch.js";
import type { EncodedFrame, ScriptTransformer } from "./encoded-frame.js";
import type { E2eeEventName, FromWorker, Operation, ToWorker, TransformOptions } from "./protocol.js";

/** At most one EncryptionInternalError event per this interval per sending track. */
const ENCRYPT_ERROR_EVENT_INTERVAL_MS = 10_000;
/** A recovering receiver asks for a key frame at most this often. */
const KEY_FRAME_REQUEST_INTERVAL_MS = 500;

export interface WorkerHost {
  /** Milliseconds on a monotonic clock (performance.now() in the worker). */
  now(): number;
  post(message: FromWorker): void;
}

interface KeyFrameControl {
  /** Asks for a key frame: the sender's encoder, or the remote sender. */
  request(): void;
}

interface Transform {
  readonly id: string;
  readonly operation: Operation;
  fallbackCodec: Codec | null;
  /** Video sender: the codec of the last key frame (see codecOf). */
  senderCodec: Codec | null;
  /** The last frame MIME type seen and its codec (parsed once, not per frame). */
  lastMimeType: string;
  lastMimeCodec: Codec;
  /** Payload type -> codec, from the negotiation. */
  payloadCodecs: Map<number, Codec>;
  readonly keyFrame: KeyFrameControl;
  encryptor: FrameEncryptor | null;
  /** Resolves to the encryptor once the key is known (created lazily, async key derivation). */
  encryptorReady: Promise<FrameEncryptor> | null;
  decryptor: StreamDecryptor | null;
  lastEncryptErrorEvent: number | null;
  /** Receiver: frames dropped since the last one that decrypted (the decoder is missing them). */
  droppedSinceSuccess: number;
  lastKeyFrameRequest: number | null;
  firstDecrypted: boolean;
  closed: boolean;
}

export function isTransformOptions(o: unknown): o is TransformOptions {
  const x = o as TransformOptions | null;
  return (
    typeof x === "object" &&
    x !== null &&
    typeof x.transformId === "string" &&
    (x.operation === "encrypt" || x.operation === "decrypt") &&
    typeof x.mimeType === "string" &&
    (x.continues === undefined || typeof x.continues === "string")
  );
}

function frameBytes(data: Uint8Array): ArrayBuffer {
  // frame.data needs an ArrayBuffer of exactly the frame.
  if (data.byteOffset === 0 && data.byteLength === data.buffer.byteLength && data.buffer instanceof ArrayBuffer) {
    return data.buffer;
  }
  return data.slice().buffer as ArrayBuffer;
}

/**
 * How long a closed transform's crypto state stays available to a transform that continues it
 * (`TransformOptions.continues`): the page closes the old one once the new peer connection is
 * negotiated, and the new transform's `rtctransform` event may reach the worker after that.
 */
const RETIRED_KEEP_MS = 60_000;

/** How many recent per-frame crypto times the worker keeps for diagnostics, per direction. */
export const TIMING_SAMPLES = 4096;

/** A ring of the last samples (duration, size) of video frames. */
class TimingRing {
  private readonly ms = new Float64Array(TIMING_SAMPLES);
  private readonly bytes = new Uint32Array(TIMING_SAMPLES);
  private n = 0;
  add(ms: number, bytes: number): void {
    this.ms[this.n % TIMING_SAMPLES] = ms;
    this.bytes[this.n % TIMING_SAMPLES] = bytes;
    this.n++;
  }
  snapshot(): { ms: number[]; bytes: number[] } {
    const count = Math.min(this.n, TIMING_SAMPLES);
    const start = this.n - count;
    const ms: number[] = [];
    const bytes: number[] = [];
    for (let i = start; i < this.n; i++) {
      ms.push(this.ms[i % TIMING_SAMPLES]!);
      bytes.push(this.bytes[i % TIMING_SAMPLES]!);
    }
    return { ms, bytes };
  }
}

export class WorkerCore {
  private readonly encryptTimes = new TimingRing();
  private readonly decryptTimes = new TimingRing();
  private suite: CipherSuite | null = null;
  private ring: KeyRing | null = null;
  private baseKey: Uint8Array | null = null;
  private readonly transforms = new Map<string, Transform>();
  /** Closed transforms that a new one may still continue, with when they were closed. */
  private readonly retired = new Map<string, { t: Transform; at: number }>();

  constructor(private readonly host: WorkerHost) {}

  /** Handles a message from the page. */
  async handleMessage(msg: ToWorker): Promise<void> {
    switch (msg.type) {
      case "setKey":
        try {
          await this.setKey(msg.baseKey, msg.suite);
          this.host.post({ type: "keySet", requestId: msg.requestId });
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          this.host.post({ type: "keyError", requestId: msg.requestId, name: err.name, message: err.message });
        }
        return;
      case "streams": {
        const { readable, writable, transformId, operation, mimeType, continues } = msg;
        const page: KeyFrameControl = {
          request: () => this.host.post({ type: "keyFrameNeeded", transformId, operation }),
        };
        this.attach({ transformId, operation, mimeType, ...(continues !== undefined ? { continues } : {}) }, readable as ReadableStream<EncodedFrame>, writable as WritableStream<EncodedFrame>, page);
        return;
      }
      case "codec": {
        const t = this.transforms.get(msg.transformId);
        if (!t) return;
        t.senderCodec = null;
        if (msg.mimeType) t.fallbackCodec = codecFromMimeType(msg.mimeType);
        for (const [pt, mime] of Object.entries(msg.payloadTypes ?? {})) t.payloadCodecs.set(Number(pt), codecFromMimeType(mime));
        return;
      }
      case "close": {
        const t = this.transforms.get(msg.transformId);
        const now = this.host.now();
        if (t) {
          t.closed = true;
          this.retired.set(t.id, { t, at: now });
        }
        this.transforms.delete(msg.transformId);
        for (const [id, r] of this.retired) if (now - r.at > RETIRED_KEEP_MS) this.retired.delete(id);
        return;
      }
      case "timings": {
        const e = this.encryptTimes.snapshot();
        const d = this.decryptTimes.snapshot();
        this.host.post({ type: "timings", requestId: msg.requestId, encrypt: e.ms, decrypt: d.ms, encryptBytes: e.bytes, decryptBytes: d.bytes });
        return;
      }
    }
  }

  /** The RTCRtpScriptTransform path: called from `onrtctransform`. */
  attachScriptTransformer(transformer: ScriptTransformer): void {
    const options = transformer.options;
    if (!isTransformOptions(options)) {
      throw new TypeError("RTCRtpScriptTransform created without Umbra transform options");
    }
    const control: KeyFrameControl = {
      request: () => {
        const p = options.operation === "encrypt" ? transformer.generateKeyFrame?.() : transformer.sendKeyFrameRequest?.();
        // Audio transformers reject key frame requests; a request can also race a stopped
        // track. Neither is an error worth reporting.
        if (p) p.catch(() => undefined);
        else this.host.post({ type: "keyFrameNeeded", transformId: options.transformId, operation: options.operation });
      },
    };
    this.attach(options, transformer.readable, transformer.writable, control);
  }

  /** Frames this worker has finished with, passed on or dropped (for tests and diagnostics). */
  get framesHandled(): number {
    return this.handled;
  }

  private handled = 0;

  /** Number of live transforms (for tests and diagnostics). */
  get transformCount(): number {
    return this.transforms.size;
  }

  private async setKey(baseKey: Uint8Array, suiteId: number): Promise<void> {
    const suite = suiteById(suiteId);
    const now = this.host.now();
    if (!this.suite || this.suite.id !== suite.id || !this.ring) {
      // A session has one suite; a different one means a new session: start over.
      this.suite = suite;
      this.ring = new KeyRing(suite);
      for (const t of this.transforms.values()) {
        t.encryptor = null;
        t.encryptorReady = null;
        if (t.decryptor) t.decryptor = new StreamDecryptor(t.decryptor.codec);
      }
    }
    const changed = this.ring.setBaseKey(baseKey, now);
    this.baseKey = Uint8Array.from(baseKey);
    if (!changed) return;
    // A new secret takes effect at once for outgoing frames (new KID, counter 0), and the
    // encoder is asked for a key frame so receivers can start decoding immediately.
    const switches: Promise<void>[] = [];
    for (const t of this.transforms.values()) {
      if (t.operation !== "encrypt" || !t.encryptorReady) continue;
      const key = this.baseKey;
      switches.push(
        t.encryptorReady
          .then(async (enc) => {
            await enc.setBaseKey(key);
            t.keyFrame.request();
          })
          // One track that cannot switch must not fail the others (or the key change itself).
          .catch((e: unknown) => this.postEvent(t, "encryptionInternalError", `cannot switch to the new secret: ${e instanceof Error ? e.message : String(e)}`)),
      );
    }
    await Promise.all(switches);
  }

  private attach(options: TransformOptions, readable: ReadableStream<EncodedFrame>, writable: WritableStream<EncodedFrame>, keyFrame: KeyFrameControl): void {
    const t: Transform = {
      id: options.transformId,
      operation: options.operation,
      fallbackCodec: options.mimeType ? codecFromMimeType(options.mimeType) : null,
      senderCodec: null,
      lastMimeType: "",
      lastMimeCodec: "opaque",
      payloadCodecs: new Map(),
      keyFrame,
      encryptor: null,
      encryptorReady: null,
      decryptor: options.operation === "decrypt" ? new StreamDecryptor(codecFromMimeType(options.mimeType)) : null,
      lastEncryptErrorEvent: null,
      droppedSinceSuccess: 0,
      lastKeyFrameRequest: null,
      firstDecrypted: false,
      closed: false,
    };
    if (options.continues !== undefined) this.continueFrom(t, options.continues);
    this.transforms.set(t.id, t);
    const stream = new TransformStream<EncodedFrame, EncodedFrame>({
      transform: async (frame, controller) => {
        let pass = false;
        try {
          pass = await this.process(t, frame);
        } catch (e) {
          // An unexpected failure drops this frame only: an exception here would error the
          // stream and stop the track's media for good.
          this.postEvent(t, t.operation === "encrypt" ? "encryptionInternalError" : "decryptionInternalError", `frame dropped: ${e instanceof Error ? e.message : String(e)}`);
        }
        this.handled++;
        if (pass) controller.enqueue(frame);
      },
    });
    readable
      .pipeThrough(stream)
      .pipeTo(writable)
      .catch((e: unknown) => {
        if (!t.closed) this.host.post({ type: "transformError", transformId: t.id, message: e instanceof Error ? e.message : String(e) });
      })
      .finally(() => {
        if (this.transforms.get(t.id) === t) this.transforms.delete(t.id);
      });
  }

  /**
   * A new transform takes over the crypto state of the one it replaces (see
   * `TransformOptions.continues`). The encryptor object itself is shared, not copied: should the
   * old transform still pass a frame, both draw from one counter, never the same value twice.
   */
  private continueFrom(t: Transform, fromId: string): void {
    const from = this.transforms.get(fromId) ?? this.retired.get(fromId)?.t;
    this.retired.delete(fromId);
    if (!from || from.operation !== t.operation) return;
    t.encryptor = from.encryptor;
    t.encryptorReady = from.encryptorReady;
    if (from.decryptor) t.decryptor = from.decryptor;
    t.firstDecrypted = from.firstDecrypted;
    t.fallbackCodec ??= from.fallbackCodec;
    for (const [pt, c] of from.payloadCodecs) if (!t.payloadCodecs.has(pt)) t.payloadCodecs.set(pt, c);
  }

  /**
   * Per-frame codec: the frame's own MIME type when the browser provides it (Chromium), else its
   * payload type's negotiated codec, else the transform's negotiated codec.
   */
  private codecOf(t: Transform, frame: EncodedFrame): Codec | null {
    // A sender's codec changes only with a new encoder, whose first frame is a key frame: its
    // delta frames reuse the codec of the last key frame and skip getMetadata(), which builds a
    // dictionary per call and is a visible part of a sender's per-frame CPU.
    const video = frame.type !== undefined;
    if (t.operation === "encrypt" && video && frame.type !== "key" && t.senderCodec !== null) return t.senderCodec;
    const codec = this.codecFromMetadata(t, frame);
    if (t.operation === "encrypt" && video) t.senderCodec = codec;
    return codec;
  }

  private codecFromMetadata(t: Transform, frame: EncodedFrame): Codec | null {
    let meta: { mimeType?: unknown; payloadType?: unknown } = {};
    try {
      meta = frame.getMetadata();
    } catch {
      // a frame without metadata: use what was negotiated
    }
    if (typeof meta.mimeType === "string" && meta.mimeType.length > 0) {
      if (meta.mimeType !== t.lastMimeType) {
        t.lastMimeType = meta.mimeType;
        t.lastMimeCodec = codecFromMimeType(meta.mimeType);
      }
      return t.lastMimeCodec;
    }
    if (typeof meta.payloadType === "number") {
      const c = t.payloadCodecs.get(meta.payloadType);
      if (c) return c;
    }
    return t.fallbackCodec;
  }

  /** Transforms one frame in place; returns whether to pass it on. */
  private async process(t: Transform, frame: EncodedFrame): Promise<boolean> {
    const codec = this.codecOf(t, frame);
    // Not negotiated yet and the frame does not say: framing it under a guessed rule could
    // leave it undecodable or expose bytes, so it is dropped (this window is before media flows).
    if (codec === null) return false;
    const data = new Uint8Array(frame.data);
    return t.operation === "encrypt" ? this.encryptFrame(t, frame, codec, data) : this.decryptFrame(t, frame, codec, data);
  }

  private encryptorFor(t: Transform): Promise<FrameEncryptor> | null {
    if (t.encryptorReady) return t.encryptorReady;
    if (!this.suite || !this.baseKey) return null;
    const ready = FrameEncryptor.create(this.suite, this.baseKey);
    t.encryptorReady = ready;
    ready.then(
      (enc) => (t.encryptor = enc),
      () => (t.encryptorReady = null), // try again with the next frame
    );
    return ready;
  }

  private async encryptFrame(t: Transform, frame: EncodedFrame, codec: Codec, data: Uint8Array): Promise<boolean> {
    const ready = this.encryptorFor(t);
    // Without a key nothing is sent: plaintext never enters an encrypted session.
    if (!ready) return false;
    try {
      const enc = t.encryptor ?? (await ready);
      // Timings are kept for video frames only (the figures are per video frame).
      const video = frame.type !== undefined;
      const started = video ? this.host.now() : 0;
      const out = await enc.encrypt(codec, data);
      if (video) this.encryptTimes.add(this.host.now() - started, data.byteLength);
      frame.data = frameBytes(out);
      return true;
    } catch (e) {
      const now = this.host.now();
      if (t.lastEncryptErrorEvent === null || now - t.lastEncryptErrorEvent >= ENCRYPT_ERROR_EVENT_INTERVAL_MS) {
        t.lastEncryptErrorEvent = now;
        const message = e instanceof E2eeError || e instanceof FrameError ? e.message : `encryption failed: ${String(e)}`;
        this.postEvent(t, "encryptionInternalError", message);
      }
      return false;
    }
  }

  private async decryptFrame(t: Transform, frame: EncodedFrame, codec: Codec, data: Uint8Array): Promise<boolean> {
    const rx = t.decryptor!;
    if (rx.codec !== codec) rx.codec = codec;
    if (!this.ring) {
      t.droppedSinceSuccess++;
      return false;
    }
    const now = this.host.now();
    const out = await rx.decrypt(this.ring, data, now);
    if (frame.type !== undefined && out.status === "decrypted") this.decryptTimes.add(this.host.now() - now, data.byteLength);
    for (const ev of rx.takeEvents()) this.postE2eeEvent(t, ev);
    if (out.status !== "decrypted") {
      if (out.status !== "replayed") t.droppedSinceSuccess++;
      return false;
    }
    frame.data = frameBytes(out.frame);
    if (!t.firstDecrypted) {
      t.firstDecrypted = true;
      this.postEvent(t, "firstFrameDecrypted", "the first frame of this stream decrypted");
    }
    // The decoder missed the frames we dropped and cannot decode deltas until a key frame:
    // ask the sender for one instead of waiting for its next periodic key frame.
    if (t.droppedSinceSuccess > 0) {
      t.droppedSinceSuccess = 0;
      const isVideo = frame.type !== undefined;
      const due = t.lastKeyFrameRequest === null || now - t.lastKeyFrameRequest >= KEY_FRAME_REQUEST_INTERVAL_MS;
      if (isVideo && frame.type !== "key" && due) {
        t.lastKeyFrameRequest = now;
        t.keyFrame.request();
      }
    }
    return true;
  }

  private postE2eeEvent(t: Transform, ev: E2eeEvent): void {
    switch (ev.type) {
      case "EncryptionSecretMismatch":
        return this.postEvent(t, "encryptionSecretMismatch", "the frames of this stream do not authenticate with this client's encryption secret: the publisher most likely uses a different secret");
      case "EncryptionSecretMatch":
        return this.postEvent(t, "encryptionSecretMatch", "the frames of this stream authenticate again with this client's encryption secret");
      case "StreamNotEncrypted":
        return this.postEvent(t, "streamNotEncrypted", "the frames of this stream are not SFrame objects: its publisher declares end-to-end encryption but sends unencrypted media (nothing of it is rendered)");
      case "DecryptionInternalError":
        return this.postEvent(t, "decryptionInternalError", `decryption failed: ${ev.error.message}`);
      default: {
        // A verdict of the core that the page never hears of is an app told nothing: new event
        // types must be named here (tsc fails otherwise).
        const unhandled: never = ev;
        return unhandled;
      }
    }
  }

  private postEvent(t: Transform, event: E2eeEventName, message: string): void {
    this.host.post({ type: "event", transformId: t.id, event, message });
  }
}
