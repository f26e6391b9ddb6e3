// The seam between the session (signaling, keys, events) and WebRTC media. The session only
// talks to this interface; src/media/peer-engine.ts implements it with RTCPeerConnection and the
// E2EE worker. Environments without WebRTC get no engine, and publish/subscribe fail with a
// clear error instead of pretending.

import type { SignalingClient } from "../api/signaling-client.js";
import type { Joined, MediaEvent, VideoDimensions, VideoType } from "../api/signaling-types.js";
import type { SubscriberE2eeEventName } from "../worker/protocol.js";

/** What the engine needs from the session it serves. */
export interface MediaContext {
  readonly signaling: SignalingClient;
  /** The session as the server described it at connect (all snapshot pages merged). */
  readonly welcome: Joined;
  /** The SFrame suite when the session is end-to-end encrypted, else null. */
  readonly e2eeSuite: number | null;
}

export interface PublishRequest {
  stream: MediaStream;
  name: string;
  videoType: VideoType;
  /** Preferred video codec (`VP8`, `VP9`, `H264`, `AV1`), if the app asked for one. */
  preferredVideoCodec?: string;
  /** The publication's media could not be moved to the session's new router (`media_restart`). */
  onMediaFailure?: (message: string) => void;
  /**
   * Routed camera video: send three simulcast layers (default true). Screen share always sends
   * one layer.
   */
  simulcast?: boolean;
  /** Routed VP9/AV1 camera video as one SVC stream (default: AV1 yes, VP9 no). */
  scalableVideo?: boolean;
  /**
   * Routed: let the browser put RFC 6464 audio levels (in clear) on audio packets so the router
   * can tell who speaks (default true). False removes the header extension from the offer.
   */
  publishAudioLevels?: boolean;
}

/**
 * What a subscriber wants of a subscription's video (docs/signaling.md § set_video_preference).
 * Null limits mean none.
 */
export interface VideoPreference {
  video: boolean;
  maxDimensions: VideoDimensions | null;
  maxFrameRate: number | null;
}

export const NO_VIDEO_PREFERENCE: VideoPreference = { video: true, maxDimensions: null, maxFrameRate: null };

export interface Publication {
  readonly streamId: string;
  stop(): Promise<void>;
}

/** Receive-side figures of a subscription, from its peer connection's getStats(). */
export interface ReceiveStats {
  timestamp: number;
  audio: { bytesReceived: number; packetsReceived: number; packetsLost: number; audioLevel: number | null } | null;
  video: {
    bytesReceived: number;
    packetsReceived: number;
    packetsLost: number;
    frameWidth: number;
    frameHeight: number;
    framesPerSecond: number;
    framesDecoded: number;
    freezeCount: number;
    totalFreezesDuration: number;
  } | null;
}

export interface SubscribeRequest {
  streamId: string;
  hasAudio: boolean;
  hasVideo: boolean;
  /** Receives the remote media once tracks arrive. */
  onTrack(stream: MediaStream): void;
  /** E2EE events of this subscription's frames (mismatch, not encrypted, match, errors). */
  onE2eeEvent(event: SubscriberE2eeEventName, message: string): void;
  /** The router or the peer connection failed. */
  onFailure(message: string): void;
  /**
   * The video wanted from the start. Routed: sent with set_video_preference once the
   * subscription exists (unless it is the default). Relayed: `video: false` negotiates no video.
   */
  preference?: VideoPreference;
}

export interface Subscription {
  readonly subscriptionId: string;
  /**
   * Routed: sends the preference to the router and remembers it (sent again after a
   * `media_restart` renegotiation and after a resumed signaling connection). Relayed: a no-op,
   * the publisher's peer connection sends what it sends.
   */
  setVideoPreference(preference: VideoPreference): Promise<void>;
  /** The current audio level (0 to 1) of the received audio, null if none is known. */
  audioLevel(): number | null;
  getStats(): Promise<ReceiveStats>;
  stop(): Promise<void>;
}

export interface MediaEngine {
  /** Gives every current and future transform of the session this base key; resolves once it is in effect. */
  setKey(baseKey: Uint8Array, suite: number): Promise<void>;
  publish(req: PublishRequest, onE2eeError: (message: string) => void): Promise<Publication>;
  subscribe(req: SubscribeRequest): Promise<Subscription>;
  /**
   * The negotiation events of this client's peer connections (`ice`, `answer`, `subscribe_offer`,
   * `subscription_ended`, `media_restart`); returns whether one of them was concerned. The router's verdicts on a
   * peer connection (`media_failed`, `media_closed`) go to the Publisher or Subscriber instead,
   * which end their publication or subscription through this engine.
   */
  handleServerEvent(event: MediaEvent): boolean;
  /** The signaling connection was resumed: redo what a dropped socket interrupted. */
  reconnected(): void;
  close(): void;
}

export type MediaEngineFactory = (ctx: MediaContext) => MediaEngine;
