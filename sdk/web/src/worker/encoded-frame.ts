// The parts of the WebRTC Encoded Transform API the worker uses, declared here rather than
// taken from lib.dom/lib.webworker (which conflict when used together, and lag the spec).

export interface EncodedFrameMetadata {
  mimeType?: string;
  payloadType?: number;
  [key: string]: unknown;
}

/** RTCEncodedVideoFrame or RTCEncodedAudioFrame. */
export interface EncodedFrame {
  data: ArrayBuffer;
  /** Video only: "key", "delta" or "empty". */
  readonly type?: string;
  getMetadata(): EncodedFrameMetadata;
}

/** RTCRtpScriptTransformer, as seen in the worker's `rtctransform` event. */
export interface ScriptTransformer {
  readonly readable: ReadableStream<EncodedFrame>;
  readonly writable: WritableStream<EncodedFrame>;
  readonly options: unknown;
  /** Senders: make the encoder produce a key frame. */
  generateKeyFrame?(rid?: string): Promise<unknown>;
  /** Receivers: ask the remote sender for a key frame. */
  sendKeyFrameRequest?(): Promise<unknown>;
}
