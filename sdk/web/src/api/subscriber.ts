// OT.Subscriber: one remote stream, shown in a target element. In an end-to-end encrypted
// session it reports whether the stream's frames decrypt with this client's secret:
// `encryptionSecretMismatch` once when they stop (another secret), `streamNotEncrypted` once when
// its publisher sends plain media despite declaring E2EE, `encryptionSecretMatch` once when they
// decrypt again.

import { type MediaEngine, type ReceiveStats, type Subscription, type VideoPreference } from "../media/engine.js";
import type { SubscriberE2eeEventName } from "../worker/protocol.js";
import { resolveTarget, showMedia, type MediaView, type Target } from "./dom.js";
import { OTError } from "./errors.js";
import type { SubscriberDestroyedReason, SubscriberEvents, SignalEvent, VideoLayerInfo } from "./event-types.js";
import { EventEmitter, makeEvent, type Handler } from "./events.js";
import type { Stream } from "./model.js";

export interface SubscriberProperties {
  subscribeToAudio?: boolean;
  subscribeToVideo?: boolean;
  insertDefaultUI?: boolean;
  /** As setPreferredResolution, from the start. */
  preferredResolution?: { width: number; height: number } | null;
  /** As setPreferredFrameRate, from the start. */
  preferredFrameRate?: number | null;
}

export type VideoLayer = VideoLayerInfo;

/** How often audioLevelUpdated fires while listened to (OpenTok.js: about 4 Hz). */
const AUDIO_LEVEL_INTERVAL_MS = 250;
const MAX_DIMENSION = 16384;
const MAX_FRAME_RATE = 240;

/** What getStats() resolves with: the receive figures and the layer the router forwards. */
export interface SubscriberStats extends ReceiveStats {
  videoLayer: VideoLayerInfo | null;
}

function checkResolution(r: unknown): { width: number; height: number } | null {
  if (r === null || r === undefined) return null;
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isFinite(n) && n >= 1;
  const x = r as { width?: unknown; height?: unknown };
  if (typeof r !== "object" || !ok(x.width) || !ok(x.height)) {
    throw new OTError("OT_INVALID_PARAMETER", "setPreferredResolution needs {width, height} (positive numbers) or null");
  }
  return { width: Math.min(MAX_DIMENSION, Math.round(x.width)), height: Math.min(MAX_DIMENSION, Math.round(x.height)) };
}

function checkFrameRate(fps: unknown): number | null {
  if (fps === null || fps === undefined) return null;
  if (typeof fps !== "number" || !Number.isFinite(fps) || fps <= 0) throw new OTError("OT_INVALID_PARAMETER", "setPreferredFrameRate needs a positive number of frames per second or null");
  return Math.min(MAX_FRAME_RATE, Math.max(1, Math.round(fps)));
}

// Typed on/once overloads, merged into the class.
export interface Subscriber {
  on<K extends keyof SubscriberEvents & string>(type: K, handler: (event: SubscriberEvents[K]) => void, context?: unknown): this;
  on(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  on(handlers: { [K in keyof SubscriberEvents]?: (event: SubscriberEvents[K]) => void }, context?: unknown): this;
  on(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
  once<K extends keyof SubscriberEvents & string>(type: K, handler: (event: SubscriberEvents[K]) => void, context?: unknown): this;
  once(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  once(handlers: { [K in keyof SubscriberEvents]?: (event: SubscriberEvents[K]) => void }, context?: unknown): this;
  once(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
}

export class Subscriber extends EventEmitter {
  element: HTMLVideoElement | null = null;
  private view: MediaView | null = null;
  private subscription: Subscription | null = null;
  private readonly target: HTMLElement | null;
  private settle: ((e?: OTError) => void) | null = null;
  /** What the app was last told about the stream's frames: the audio and video transforms each
   * report, the app hears once per subscriber (like the native SDK). */
  private verdict: "decrypting" | "mismatch" | "notEncrypted" = "decrypting";
  /** Whether stop() ran: a subscriber ends once, whatever ended it (app, stream, router). */
  private ended = false;
  /** What the app wants of the video; the engine sends it to the router (routed sessions). */
  private preference: VideoPreference;
  /** The layer the router last said it forwards (routed sessions), null until it says. */
  videoLayer: VideoLayerInfo | null = null;
  private audioTimer: ReturnType<typeof setInterval> | null = null;
  private audioPolling = false;

  constructor(
    public stream: Stream | null,
    target: Target,
    readonly properties: SubscriberProperties,
  ) {
    super();
    this.target = resolveTarget(target);
    this.preference = {
      video: properties.subscribeToVideo !== false,
      maxDimensions: checkResolution(properties.preferredResolution),
      maxFrameRate: checkFrameRate(properties.preferredFrameRate),
    };
  }

  /**
   * As OpenTok.js: the largest video wanted (routed sessions: the router forwards the smallest
   * simulcast layer at least this large, within the bandwidth it estimates); null or undefined:
   * no limit. Relayed sessions: remembered, no effect (the publisher sends one layer).
   */
  setPreferredResolution(resolution: { width: number; height: number } | null | undefined): this {
    return this.prefer({ ...this.preference, maxDimensions: checkResolution(resolution) });
  }

  /** As OpenTok.js: the frame rate wanted at most (routed: by dropping temporal layers); null: all. */
  setPreferredFrameRate(frameRate: number | null | undefined): this {
    return this.prefer({ ...this.preference, maxFrameRate: checkFrameRate(frameRate) });
  }

  /**
   * As OpenTok.js: starts or stops receiving video. The received video track is disabled here;
   * routed sessions also have the router stop forwarding it (the bandwidth is saved, audio
   * continues). Relayed sessions: the publisher keeps sending it.
   */
  subscribeToVideo(value: boolean): this {
    this.properties.subscribeToVideo = value;
    for (const t of (this.element?.srcObject as MediaStream | null)?.getVideoTracks?.() ?? []) t.enabled = value;
    return this.prefer({ ...this.preference, video: value !== false });
  }

  /** The preference in effect (what was last asked for). */
  get videoPreference(): Readonly<VideoPreference> {
    return this.preference;
  }

  private prefer(p: VideoPreference): this {
    this.preference = p;
    const sub = this.subscription;
    if (sub && !this.ended) {
      sub.setVideoPreference(p).catch((e: unknown) => {
        // A socket that dropped gets the preference again once resumed (the engine does that).
        if (e instanceof OTError && e.name === "OT_NOT_CONNECTED") return;
        const error = e instanceof OTError ? e : new OTError("OT_UNEXPECTED_SERVER_RESPONSE", String(e));
        this.dispatch(makeEvent("exception", { name: error.name, code: error.name, message: `cannot set the video preference: ${error.message}`, error }));
      });
    }
    return this;
  }

  /** The router changed what this subscription carries (`video_layer_changed`). */
  onVideoLayerChanged(layer: VideoLayerInfo): void {
    if (this.ended) return;
    this.videoLayer = { ...layer };
    this.dispatch(makeEvent("videoLayerChanged", { ...layer }));
  }

  /**
   * Receive statistics (bytes, packets, frame size and rate, freezes) and the layer forwarded;
   * OpenTok.js-style callback or promise.
   */
  getStats(callback?: (error?: OTError, stats?: SubscriberStats) => void): Promise<SubscriberStats> {
    const run = (async () => {
      const sub = this.subscription;
      if (!sub) throw new OTError("OT_NOT_CONNECTED", "getStats() needs an active subscription");
      return { ...(await sub.getStats()), videoLayer: this.videoLayer };
    })();
    run.then((s) => callback?.(undefined, s), (e: OTError) => callback?.(e));
    if (callback) run.catch(() => undefined);
    return run;
  }

  /** audioLevelUpdated, while someone listens: the receiver's level, else the decoder's. */
  private startAudioLevels(): void {
    if (this.audioTimer !== null) return;
    this.audioTimer = setInterval(() => {
      const sub = this.subscription;
      if (!sub || this.audioPolling || !this.hasListeners("audioLevelUpdated")) return;
      const level = sub.audioLevel();
      if (level !== null) {
        this.dispatch(makeEvent("audioLevelUpdated", { audioLevel: level }));
        return;
      }
      this.audioPolling = true;
      sub
        .getStats()
        .then((s) => {
          const l = s.audio?.audioLevel;
          if (typeof l === "number" && !this.ended) this.dispatch(makeEvent("audioLevelUpdated", { audioLevel: l }));
        })
        .catch(() => undefined)
        .finally(() => (this.audioPolling = false));
    }, AUDIO_LEVEL_INTERVAL_MS);
    (this.audioTimer as { unref?: () => void }).unref?.();
  }

  /**
   * Negotiates the stream's media. Resolves when the first frame arrives (decrypted, in an
   * E2EE session); rejects with OT_ENCRYPTION_SECRET_MISMATCH if frames arrive that do not
   * decrypt with this client's secret, OT_STREAM_NOT_ENCRYPTED if they are not encrypted at
   * all, or with the media failure.
   */
  async start(engine: MediaEngine, takeEarlyLayer: (subscriptionId: string) => VideoLayerInfo | null = () => null): Promise<void> {
    const stream = this.stream!;
    const asked = this.preference;
    const firstOutcome = new Promise<void>((resolve, reject) => {
      this.settle = (e) => (e ? reject(e) : resolve());
    });
    const subscription = await engine.subscribe({
      streamId: stream.streamId,
      hasAudio: this.properties.subscribeToAudio !== false && stream.hasAudio,
      hasVideo: stream.hasVideo,
      preference: asked,
      onTrack: (ms) => this.onMedia(ms),
      onE2eeEvent: (event, message) => this.onE2ee(event, message),
      onFailure: (message) => {
        if (!this.ended) this.fail(message);
      },
    });
    if (this.ended) {
      // Unsubscribed (or ended by the router) while the subscription was being set up.
      await subscription.stop().catch(() => undefined);
    } else {
      this.subscription = subscription;
      const early = takeEarlyLayer(subscription.subscriptionId);
      if (early) this.onVideoLayerChanged(early);
      // Changed while the subscription was being set up: the engine sent the one asked first.
      if (this.preference !== asked) this.prefer(this.preference);
      this.startAudioLevels();
      if (!stream.e2ee) this.resolveStart();
    }
    await firstOutcome;
  }

  private resolveStart(e?: OTError): void {
    const s = this.settle;
    this.settle = null;
    s?.(e);
  }

  private onMedia(ms: MediaStream): void {
    // A restarted peer connection (media_restart) brings its tracks in a new MediaStream.
    if (this.element && this.element.srcObject !== ms) {
      this.element.srcObject = ms;
      void this.element.play().catch(() => undefined);
    }
    if (!this.view && this.properties.insertDefaultUI !== false) {
      this.view = showMedia(this.target, ms, { muted: false, mirror: false, className: "OT_subscriber umbra-subscriber" });
      this.element = this.view?.element ?? null;
      if (this.element) this.dispatch(makeEvent("videoElementCreated", { element: this.element }));
    }
  }

  /** Events of the decrypting transforms (from the worker, through the engine). */
  onE2ee(event: SubscriberE2eeEventName, message: string): void {
    switch (event) {
      case "firstFrameDecrypted":
        this.resolveStart();
        return;
      case "encryptionSecretMismatch": {
        // Once the publisher is known to send plain media, "check the secret" (a mismatch on
        // its other track) would be the wrong advice.
        if (this.verdict !== "decrypting") return;
        this.verdict = "mismatch";
        const error = new OTError("OT_ENCRYPTION_SECRET_MISMATCH", "This stream cannot be decrypted: its publisher uses a different encryption secret.");
        this.resolveStart(error);
        this.dispatch(makeEvent("encryptionSecretMismatch", { error, message }));
        return;
      }
      case "streamNotEncrypted": {
        if (this.verdict === "notEncrypted") return;
        this.verdict = "notEncrypted";
        const error = new OTError("OT_STREAM_NOT_ENCRYPTED", "This stream is not end-to-end encrypted: its publisher's app sends unencrypted media, so it is not shown.");
        this.resolveStart(error);
        this.dispatch(makeEvent("streamNotEncrypted", { error, message }));
        return;
      }
      case "encryptionSecretMatch":
        if (this.verdict === "decrypting") return;
        this.verdict = "decrypting";
        this.dispatch(makeEvent("encryptionSecretMatch", { message }));
        return;
      case "decryptionInternalError":
        this.dispatch(makeEvent("exception", { name: "OT_DECRYPTION_ERROR", code: "OT_DECRYPTION_ERROR", message }));
        return;
    }
  }

  /** The id of this subscriber's subscription on the server, once it has one. */
  get subscriptionId(): string | null {
    return this.subscription?.subscriptionId ?? null;
  }

  /**
   * The media router failed (`media_failed`) or closed (`media_closed`: the stream ended) this
   * subscriber's peer connection. A failure is reported as an `exception` (OT_MEDIA_ERROR, and
   * as the subscribe callback's error if it had not completed); either way the subscriber ends
   * with `destroyed` (`mediaFailed` / `mediaClosed`). The Session has already let go of it.
   */
  onMediaEnded(failed: boolean, message: string): void {
    if (this.ended) return;
    if (failed) this.fail(`the media connection for this stream failed: ${message}`);
    void this.stop(failed ? "mediaFailed" : "mediaClosed");
  }

  async stop(reason: SubscriberDestroyedReason = "unsubscribed"): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (this.audioTimer !== null) clearInterval(this.audioTimer);
    this.audioTimer = null;
    const sub = this.subscription;
    this.subscription = null;
    this.resolveStart(new OTError("OT_NOT_CONNECTED", "unsubscribed before the stream's media arrived"));
    await sub?.stop().catch(() => undefined);
    this.view?.destroy();
    this.view = null;
    this.element = null;
    this.dispatch(makeEvent("destroyed", { reason }));
  }

  /** A media failure: the subscribe callback's error if pending, and an `exception` event. */
  private fail(message: string): void {
    const e = new OTError("OT_MEDIA_ERROR", message);
    this.resolveStart(e);
    this.dispatch(makeEvent("exception", { name: e.name, code: e.name, message, error: e }));
  }
}
