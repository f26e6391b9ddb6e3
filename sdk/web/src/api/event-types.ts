// The events of Session, Publisher and Subscriber with their fields, for typed `on`/`once`
// (`session.on("streamCreated", (e) => e.stream.streamId)`).

import type { OTError, OTErrorName } from "./errors.js";
import type { OTEvent } from "./events.js";
import type { Connection, Stream } from "./model.js";
import type { DisconnectReason } from "./signaling-client.js";
import type { Reason, VideoDimensions } from "./signaling-types.js";

/** Why this client left the session. */
export type SessionDisconnectReason = DisconnectReason;
/** Why another connection left: the server's reason, as OpenTok names it. */
export type ConnectionDestroyedReason = Reason;
/** Why a stream went away: the server's reason (`unpublished`, `mediaFailed`, ...). */
export type StreamDestroyedReason = Reason;
/**
 * Why this client's own stream went away: as for any stream, or `mediaClosed` when the media
 * router closed its peer connection for a reason other than a failure.
 */
export type PublisherStreamDestroyedReason = Reason | "mediaClosed";
/**
 * Why a Subscriber ended: the app (or the default action of streamDestroyed) unsubscribed it,
 * or the media router failed (`mediaFailed`, after an `exception`) or closed (`mediaClosed`,
 * the stream ended) its peer connection.
 */
export type SubscriberDestroyedReason = "unsubscribed" | "mediaFailed" | "mediaClosed";

/** The video a routed subscription carries (subscriber.videoLayer, videoLayerChanged). */
export interface VideoLayerInfo {
  rid: string | null;
  temporalLayer: number | null;
  paused: boolean;
}

/** What changed in a streamPropertyChanged event, typed by the property. */
export type StreamPropertyChange =
  | { changedProperty: "hasAudio"; oldValue: boolean; newValue: boolean }
  | { changedProperty: "hasVideo"; oldValue: boolean; newValue: boolean }
  | { changedProperty: "videoDimensions"; oldValue: VideoDimensions | null; newValue: VideoDimensions };

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
  /**
   * Umbra: whether the signal arrived end-to-end encrypted and authenticated (E2EE sessions,
   * docs/e2ee-protocol.md §12). False for REST signals, for senders that do not encrypt, and in
   * sessions without E2EE: the server could read (and, for REST, wrote) those.
   */
  isEncrypted: boolean;
}

/**
 * Umbra: an encrypted signal that could not be opened; dispatched instead of the signal, whose
 * content is never delivered. `reason`: EncryptionSecretMismatch (another secret, or altered,
 * or made for another session or sender), ReplayedSignal, EncryptionSecretMissing (no secret
 * set here) or DecryptionInternalError (malformed).
 */
export interface SignalDecryptionFailedEvent extends OTEvent {
  from: Connection | null;
  reason: "EncryptionSecretMissing" | "EncryptionSecretMismatch" | "ReplayedSignal" | "DecryptionInternalError";
  message: string;
}

export interface SessionEvents {
  sessionConnected: OTEvent & { connections: Connection[]; streams: Stream[] };
  sessionDisconnected: OTEvent & { reason: SessionDisconnectReason };
  sessionReconnecting: OTEvent;
  sessionReconnected: OTEvent;
  connectionCreated: OTEvent & { connection: Connection };
  connectionDestroyed: OTEvent & { connection: Connection; reason: ConnectionDestroyedReason };
  streamCreated: OTEvent & { stream: Stream };
  streamDestroyed: OTEvent & { stream: Stream; reason: StreamDestroyedReason };
  streamPropertyChanged: OTEvent & { stream: Stream } & StreamPropertyChange;
  signal: SignalEvent;
  signalDecryptionFailed: SignalDecryptionFailedEvent;
  /**
   * Umbra (routed sessions): the media router's loudest stream changed, from the RFC 6464 audio
   * levels publishers send in clear; `stream` is null when that stream ended and nobody else
   * speaks. This client's own stream can be named too.
   */
  activeSpeakerChanged: OTEvent & { stream: Stream | null };
  exception: ExceptionEvent;
}

export interface PublisherEvents {
  accessAllowed: OTEvent;
  accessDenied: OTEvent;
  videoElementCreated: OTEvent & { element: HTMLVideoElement };
  streamCreated: OTEvent & { stream: Stream };
  streamDestroyed: OTEvent & { stream: Stream | null; reason: PublisherStreamDestroyedReason };
  /** A moderator forced this publisher's audio off (REST mute); it has muted (publishAudio(false)). */
  muteForced: OTEvent;
  exception: ExceptionEvent;
  destroyed: OTEvent;
}

export interface SubscriberEvents {
  videoElementCreated: OTEvent & { element: HTMLVideoElement };
  /** The stream's frames stopped decrypting with this client's secret (once per episode). */
  encryptionSecretMismatch: OTEvent & { error: OTError; message: string };
  /**
   * The stream's publisher declares end-to-end encryption but sends unencrypted media (its app
   * does not encrypt): nothing of it is shown. Not a mismatch, no secret helps; tell the user
   * "this participant's app does not encrypt". Once per episode; `error.name` is
   * OT_STREAM_NOT_ENCRYPTED.
   */
  streamNotEncrypted: OTEvent & { error: OTError; message: string };
  /** They decrypt again (after a mismatch or a stream not encrypted). */
  encryptionSecretMatch: OTEvent & { message: string };
  /**
   * As OpenTok.js: the received audio's level (0 to 1), about 4 times a second, only while
   * someone listens to this event.
   */
  audioLevelUpdated: OTEvent & { audioLevel: number };
  /**
   * Umbra (routed sessions): the simulcast layer the router forwards changed (preference or
   * bandwidth). `rid` is "q", "h" or "f" (null: a stream without simulcast), `temporalLayer`
   * the highest temporal layer forwarded (null: all), `paused`: no video is forwarded.
   */
  videoLayerChanged: OTEvent & VideoLayerInfo;
  exception: ExceptionEvent;
  destroyed: OTEvent & { reason: SubscriberDestroyedReason };
}
