// The native module's interface: the one file the Android (Kotlin) and iOS (Swift) native
// modules implement, in React Native's TurboModule spec style (codegen reads this file), and
// the one the Node addon crates/umbra-node exports for the tests. Each method is a thin call
// into the UniFFI binding of crates/umbra-ffi; README.md, "The native module", has the table.
//
// Conventions every implementation keeps:
// - Objects are named by string handles ("session-1", "publisher-2", ...) that are never reused.
// - A method that fails throws an Error whose `code` is the binding's ErrorCode name
//   ("InvalidEncryptionSecret", "EncryptionSecretMissing", "InvalidParameter", ...).
// - Everything the binding's listeners report arrives through `onEvent`, on the JS thread, in
//   the order the session's dispatch thread delivered it.
import type {CodegenTypes, TurboModule} from 'react-native';
import {TurboModuleRegistry} from 'react-native';

export type NativeStream = {
  streamId: string;
  connectionId: string;
  connectionData: string;
  name: string;
  hasAudio: boolean;
  hasVideo: boolean;
  /** "camera", "screen" or "custom". */
  videoType: string;
  videoWidth: CodegenTypes.Int32;
  videoHeight: CodegenTypes.Int32;
  /** Its publisher declares end-to-end encryption. */
  e2ee: boolean;
};

export type NativeError = {
  /** The binding's ErrorCode name, e.g. "EncryptionSecretMismatch". */
  code: string;
  /** The C SDK's number for it, e.g. 1590. */
  codeValue: CodegenTypes.Int32;
  message: string;
};

export type NativeVideoLayer = {
  /** The simulcast layer, "q", "h" or "f" from the smallest; absent without simulcast. */
  rid?: string;
  /** The highest temporal layer forwarded; absent for all. */
  temporalLayer?: CodegenTypes.Int32;
  /** No video comes at all (subscribeToVideo false, or no bandwidth for the smallest layer). */
  paused: boolean;
};

export type VideoSize = {
  width: CodegenTypes.Int32;
  height: CodegenTypes.Int32;
};

export type NativeEvent = {
  /** "session", "publisher" or "subscriber". */
  target: string;
  handle: string;
  /**
   * session: sessionConnected (connectionId), sessionDisconnected, error, connectionCreated,
   *   connectionDestroyed (connectionId, connectionData), streamCreated, streamDestroyed,
   *   streamPropertyChanged (stream), signal (signalType, data, connectionId when from a client),
   *   activeSpeakerChanged (streamId, connectionId; both absent when nobody speaks);
   * publisher: streamCreated, streamDestroyed (stream), error, muteForced;
   * subscriber (all with stream): connected, disconnected, error, encryptionSecretMismatch,
   *   encryptionSecretMatch, videoLayerChanged (videoLayer).
   */
  type: string;
  connectionId?: string;
  connectionData?: string;
  stream?: NativeStream;
  error?: NativeError;
  signalType?: string;
  data?: string;
  streamId?: string;
  videoLayer?: NativeVideoLayer;
};

export type PublisherSettings = {
  name: string;
  /** "camera" (device modules), "testPattern" (the core's moving pattern) or "none". */
  videoSource: string;
  videoWidth: CodegenTypes.Int32;
  videoHeight: CodegenTypes.Int32;
  videoFps: CodegenTypes.Int32;
  /** "microphone" (device modules), "tone" or "none". */
  audioSource: string;
  toneHz: CodegenTypes.Double;
  videoBitrateKbps: CodegenTypes.Int32;
  publishAudio: boolean;
  publishVideo: boolean;
  /** "vp8", "vp9" or "h264": the codec the core encodes the video with. */
  videoCodec: string;
  /** Simulcast layers in routed sessions (default true). */
  simulcast?: boolean;
  /** Send audio levels, in clear, for active-speaker detection (default true). */
  audioLevel?: boolean;
};

export type SubscriberStats = {
  videoFramesReceived: CodegenTypes.Double;
  videoFramesDecoded: CodegenTypes.Double;
  audioFramesDecoded: CodegenTypes.Double;
  bytesReceived: CodegenTypes.Double;
  decryptFailures: CodegenTypes.Double;
  /** Pictures handed to the subscriber's renderer. */
  framesRendered: CodegenTypes.Double;
  lastFrameWidth: CodegenTypes.Int32;
  lastFrameHeight: CodegenTypes.Int32;
  /** The frame number the last picture carries when it is the core's test pattern, else -1. */
  lastTestPatternFrame: CodegenTypes.Double;
};

export interface Spec extends TurboModule {
  sdkVersion(): string;

  createSession(apiKey: string, sessionId: string, serverUrl: string): string;
  setEncryptionSecret(session: string, secret: string): void;
  connect(session: string, token: string): void;
  disconnect(session: string): void;
  destroySession(session: string): void;
  sendSignal(session: string, signalType: string, data: string, toConnectionId: string | null): void;

  createPublisher(settings: PublisherSettings): string;
  /** A failure is thrown and also reported as the publisher's `error` event. */
  publish(session: string, publisher: string): void;
  unpublish(session: string, publisher: string): void;
  setPublishAudio(publisher: string, enabled: boolean): void;
  setPublishVideo(publisher: string, enabled: boolean): void;
  destroyPublisher(publisher: string): void;

  /** For a stream the session announced with `streamCreated`. */
  createSubscriber(session: string, streamId: string): string;
  /** A failure is thrown and also reported as the subscriber's `error` event. */
  subscribe(session: string, subscriber: string): void;
  unsubscribe(session: string, subscriber: string): void;
  destroySubscriber(subscriber: string): void;
  /** Before or after subscribe; null for no preference. InvalidParameter for a zero side. */
  setPreferredResolution(subscriber: string, size: VideoSize | null): void;
  /** Fractions round up; null for no preference. InvalidParameter unless above 0 and at most 240. */
  setPreferredFrameRate(subscriber: string, fps: CodegenTypes.Double | null): void;
  setSubscribeToVideo(subscriber: string, enabled: boolean): void;
  getSubscriberStats(subscriber: string): SubscriberStats;

  readonly onEvent: CodegenTypes.EventEmitter<NativeEvent>;
}

export default TurboModuleRegistry.get<Spec>('Umbra');
