// The page's side of the E2EE worker (one worker per connected session): gives senders and
// receivers their encrypt/decrypt transforms through whichever API the browser has, sends the
// session's key, and routes the worker's events back to the right Publisher or Subscriber.

import { OTError } from "../api/errors.js";
import type { TransformPath } from "../api/support.js";
import type { E2eeEventName, FromWorker, Operation, ToWorker, TransformOptions } from "../worker/protocol.js";

/** The parts of Worker the host uses (a fake in tests). */
export interface WorkerLike {
  postMessage(message: ToWorker, transfer?: Transferable[]): void;
  addEventListener(type: "message", listener: (e: MessageEvent<FromWorker>) => void): void;
  addEventListener(type: "error", listener: (e: ErrorEvent) => void): void;
  terminate(): void;
}

/** An RTCRtpSender or RTCRtpReceiver, as far as transforms go. */
export interface TransformTarget {
  transform?: unknown;
  createEncodedStreams?: () => { readable: ReadableStream; writable: WritableStream };
}

export type TransformEventHandler = (event: E2eeEventName, message: string) => void;

interface Attached {
  operation: Operation;
  onEvent: TransformEventHandler;
  /** createEncodedStreams path: the page's own key frame hook, if the browser has one. */
  onKeyFrameNeeded?: () => void;
}

let transformCounter = 0;

export class E2eeHost {
  private readonly attached = new Map<string, Attached>();
  private readonly pendingKeys = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private nextRequest = 1;
  private failure: string | null = null;

  constructor(
    private readonly worker: WorkerLike,
    readonly path: TransformPath,
    /** RTCRtpScriptTransform (injected for tests). */
    private readonly ScriptTransform: (new (worker: WorkerLike, options: TransformOptions) => unknown) | null,
  ) {
    worker.addEventListener("message", (e) => this.onMessage(e.data));
    worker.addEventListener("error", (e) => {
      this.failure = `the E2EE worker failed: ${e.message || "could not load it (check that umbra-e2ee-worker.js is served next to the SDK and allowed by worker-src)"}`;
      for (const p of this.pendingKeys.values()) p.reject(new OTError("OT_ENCRYPTION_ERROR", this.failure));
      this.pendingKeys.clear();
      for (const a of this.attached.values()) a.onEvent("encryptionInternalError", this.failure);
    });
  }

  /** Sends the base key; resolves once every sending transform uses it. */
  setKey(baseKey: Uint8Array, suite: number): Promise<void> {
    if (this.failure) return Promise.reject(new OTError("OT_ENCRYPTION_ERROR", this.failure));
    const requestId = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pendingKeys.set(requestId, { resolve, reject });
      this.worker.postMessage({ type: "setKey", requestId, baseKey: Uint8Array.from(baseKey), suite });
    });
  }

  /**
   * Puts an encrypt (sender) or decrypt (receiver) transform on `target`. Must happen before
   * media flows: on the sender right after the track is added, on the receiver in `ontrack`.
   * `continues`: the id of the transform this one replaces, whose crypto state it takes over
   * (after `media_restart`, see TransformOptions.continues).
   */
  attach(target: TransformTarget, operation: Operation, mimeType: string, onEvent: TransformEventHandler, onKeyFrameNeeded?: () => void, continues?: string): string {
    const transformId = `t${++transformCounter}-${operation}`;
    const options: TransformOptions = { transformId, operation, mimeType, ...(continues !== undefined ? { continues } : {}) };
    this.attached.set(transformId, { operation, onEvent, ...(onKeyFrameNeeded ? { onKeyFrameNeeded } : {}) });
    if (this.path === "script-transform" && this.ScriptTransform) {
      target.transform = new this.ScriptTransform(this.worker, options);
    } else if (typeof target.createEncodedStreams === "function") {
      const { readable, writable } = target.createEncodedStreams();
      this.worker.postMessage({ type: "streams", ...options, readable, writable }, [readable as unknown as Transferable, writable as unknown as Transferable]);
    } else {
      this.attached.delete(transformId);
      throw new OTError("OT_UNSUPPORTED_BROWSER", "this browser cannot transform encoded media frames, so it cannot encrypt them");
    }
    return transformId;
  }

  /** Tells the worker the codecs a transform's frames use, once negotiated. */
  setCodec(transformId: string, mimeType: string, payloadTypes?: Record<number, string>): void {
    if (mimeType || payloadTypes) this.worker.postMessage({ type: "codec", transformId, mimeType, ...(payloadTypes ? { payloadTypes } : {}) });
  }

  detach(transformId: string): void {
    if (this.attached.delete(transformId)) this.worker.postMessage({ type: "close", transformId });
  }

  terminate(): void {
    this.worker.terminate();
    this.attached.clear();
    for (const p of this.pendingKeys.values()) p.reject(new OTError("OT_NOT_CONNECTED", "the session was disconnected"));
    this.pendingKeys.clear();
  }

  private onMessage(msg: FromWorker): void {
    switch (msg.type) {
      case "keySet": {
        const p = this.pendingKeys.get(msg.requestId);
        this.pendingKeys.delete(msg.requestId);
        p?.resolve();
        return;
      }
      case "keyError": {
        const p = this.pendingKeys.get(msg.requestId);
        this.pendingKeys.delete(msg.requestId);
        p?.reject(new OTError("OT_ENCRYPTION_ERROR", `the E2EE worker refused the key: ${msg.message}`));
        return;
      }
      case "event":
        this.attached.get(msg.transformId)?.onEvent(msg.event, msg.message);
        return;
      case "keyFrameNeeded":
        this.attached.get(msg.transformId)?.onKeyFrameNeeded?.();
        return;
      case "transformError": {
        const a = this.attached.get(msg.transformId);
        a?.onEvent(a.operation === "encrypt" ? "encryptionInternalError" : "decryptionInternalError", msg.message);
        return;
      }
    }
  }
}
