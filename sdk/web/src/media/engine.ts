// The seam between the session (signaling, keys, events) and WebRTC media. The session only
// talks to this interface; src/media/peer-engine.ts implements it with RTCPeerConnection and the
// E2EE worker. Environments without WebRTC get no engine, and publish/subscribe fail with a
// clear error instead of pretending.

import type { SignalingClient } from "../api/signaling-client.js";
import type { Joined, MediaEvent, VideoType } from "../api/signaling-types.js";
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
}

export interface Publication {
  readonly streamId: string;
  stop(): Promise<void>;
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
}

export interface Subscription {
  readonly subscriptionId: string;
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
