// Messages between the page (src/media/e2ee-host.ts) and the encoded-transform worker.
// Structured-cloned; Uint8Arrays and transferred streams survive the trip.

export type Operation = "encrypt" | "decrypt";

/** What `new RTCRtpScriptTransform(worker, options)` carries to `onrtctransform`. */
export interface TransformOptions {
  transformId: string;
  operation: Operation;
  /**
   * The negotiated codec's MIME type (`video/VP8`), or "" while not yet negotiated; frames' own
   * metadata wins when present. A frame whose codec is unknown is dropped, never guessed.
   */
  mimeType: string;
  /**
   * The transform this one continues (a publisher's or subscriber's new peer connection after
   * `media_restart`): it takes over that transform's crypto state, so a sender's SFrame KID and
   * frame counter go on (a counter restarted under one key would reuse its AES-CTR keystream)
   * and a receiver keeps its replay window and mismatch verdict.
   */
  continues?: string;
}

export type ToWorker =
  /** Sets the session's secret (as its PBKDF2 base key) and suite. Answered with `keySet`. */
  | { type: "setKey"; requestId: number; baseKey: Uint8Array; suite: number }
  /** The createEncodedStreams path: the page transfers the streams of one sender or receiver. */
  | ({ type: "streams"; readable: ReadableStream; writable: WritableStream } & TransformOptions)
  /**
   * The codecs negotiated for a transform, once the page knows them (transforms exist before
   * negotiation): the preferred one, and every payload type's MIME type, for frames whose
   * metadata has a payloadType but no mimeType.
   */
  | { type: "codec"; transformId: string; mimeType: string; payloadTypes?: Record<number, string> }
  /** The sender or receiver is gone: forget its state. */
  | { type: "close"; transformId: string }
  /** Diagnostics: the recent per-frame crypto times (answered with `timings`). */
  | { type: "timings"; requestId: number };

export type E2eeEventName =
  | "encryptionSecretMismatch"
  | "encryptionSecretMatch"
  /**
   * Frames keep arriving that no encrypting sender produces (docs/e2ee-protocol.md §8): the
   * publisher declared E2EE but sends plain media. Its frames are dropped, never decoded. Not a
   * mismatch: no secret on this side would help.
   */
  | "streamNotEncrypted"
  | "decryptionInternalError"
  | "encryptionInternalError"
  /** Once per receiving transform: its first frame decrypted (the subscribe call completes). */
  | "firstFrameDecrypted";

/** The events a receiving (decrypt) transform reports to its Subscriber. */
export type SubscriberE2eeEventName = Exclude<E2eeEventName, "encryptionInternalError">;

export type FromWorker =
  | { type: "keySet"; requestId: number }
  | { type: "keyError"; requestId: number; name: string; message: string }
  | { type: "event"; transformId: string; event: E2eeEventName; message: string }
  /**
   * A key frame is needed (sender after a secret change, receiver after it recovers) and the
   * worker has no API for it on this path (createEncodedStreams): the page may ask itself.
   */
  | { type: "keyFrameNeeded"; transformId: string; operation: Operation }
  | { type: "transformError"; transformId: string; message: string }
  /**
   * Milliseconds spent encrypting / decrypting each of the last video frames (up to
   * TIMING_SAMPLES each, oldest first), and their sizes in bytes.
   */
  | { type: "timings"; requestId: number; encrypt: number[]; decrypt: number[]; encryptBytes: number[]; decryptBytes: number[] };
