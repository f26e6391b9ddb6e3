// The events of Session, Publisher and Subscriber with their fields, for typed `on`/`once`
// (`session.on("streamCreated", (e) => e.stream.streamId)`).

import type { OTError, OTErrorName } from "./errors.js";
import type { OTEvent } from "./events.js";
import type { Connection, Stream } from "./model.js";

export type SessionDisconnectReason = "clientDisconnected" | "networkDisconnected" | "forceDisconnected";
export type StreamDestroyedReason = "unpublished" | "clientDisconnected" | "networkDisconnected" | "forceDisconnected";

export interface ExceptionEvent extends OTEvent {
  name: OTErrorName;
  code: OTErrorName;
  message: string;
  error?: OTError;
}

export interface SignalEvent extends OTEvent {
  /** "signal:<type>", or "signal" for an untyped signal. */
  readonly type: string;
  signalType: string | null;
  data: unknown;
  /** The sender's connection; null for signals sent with the REST API. */
  from: Connection | null;
}

export interface SessionEvents {
  sessionConnected: OTEvent & { connections: Connection[]; streams: Stream[] };
  sessionDisconnected: OTEvent & { reason: SessionDisconnectReason };
  sessionReconnecting: OTEvent;
  sessionReconnected: OTEvent;
  connectionCreated: OTEvent & { connection: Connection };
  connectionDestroyed: OTEvent & { connection: Connection; reason: SessionDisconnectReason };
  streamCreated: OTEvent & { stream: Stream };
  streamDestroyed: OTEvent & { stream: Stream; reason: StreamDestroyedReason };
  streamPropertyChanged: OTEvent & { stream: Stream; changedProperty: "hasAudio" | "hasVideo" | "videoDimensions"; oldValue: unknown; newValue: unknown };
  signal: SignalEvent;
  exception: ExceptionEvent;
}

export interface PublisherEvents {
  accessAllowed: OTEvent;
  accessDenied: OTEvent;
  videoElementCreated: OTEvent & { element: HTMLVideoElement };
  streamCreated: OTEvent & { stream: Stream };
  streamDestroyed: OTEvent & { stream: Stream | null; reason: StreamDestroyedReason };
  exception: ExceptionEvent;
  destroyed: OTEvent;
}

export interface SubscriberEvents {
  videoElementCreated: OTEvent & { element: HTMLVideoElement };
  /** The stream's frames stopped decrypting with this client's secret (once per episode). */
  encryptionSecretMismatch: OTEvent & { error: OTError; message: string };
  /** They decrypt again. */
  encryptionSecretMatch: OTEvent & { message: string };
  exception: ExceptionEvent;
  destroyed: OTEvent & { reason: string };
}
