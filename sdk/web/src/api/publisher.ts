// OT.Publisher: the local camera/microphone (or a screen), shown in a target element, and
// published into a session through the media engine.

import type { MediaEngine, Publication } from "../media/engine.js";
import { resolveTarget, showMedia, type MediaView, type Target } from "./dom.js";
import { OTError } from "./errors.js";
import type { PublisherEvents, PublisherStreamDestroyedReason, SignalEvent } from "./event-types.js";
import { EventEmitter, makeEvent, type Handler } from "./events.js";
import type { Stream } from "./model.js";
import type { Session } from "./session.js";
import type { PropertyChange } from "./signaling-types.js";

function isTrack(x: unknown): x is MediaStreamTrack {
  return typeof x === "object" && x !== null && typeof (x as MediaStreamTrack).kind === "string" && typeof (x as MediaStreamTrack).stop === "function";
}

export interface PublisherProperties {
  name?: string;
  publishAudio?: boolean;
  publishVideo?: boolean;
  audioSource?: string | MediaStreamTrack | boolean | null;
  videoSource?: string | MediaStreamTrack | boolean | null | "screen";
  resolution?: `${number}x${number}`;
  frameRate?: number;
  mirror?: boolean;
  insertDefaultUI?: boolean;
  /** Preferred video codec for this publisher: "VP8" (default), "VP9", "H264" or "AV1". */
  preferredVideoCodec?: string;
  /**
   * Umbra (routed sessions): send camera video as three simulcast layers (full, half and
   * quarter size) so that the router can give each subscriber the one it wants or can take.
   * Default true; false sends one layer. Screen share always sends one layer.
   */
  simulcast?: boolean;
  /**
   * Umbra (routed sessions): send VP9 camera video as one SVC stream (three spatial and three
   * temporal layers, `L3T3_KEY`) instead of rid layers, where the browser can. Default false for
   * VP9, since the native SDKs decode VP9 but not VP9 SVC; AV1 goes as SVC unless this is false.
   */
  scalableVideo?: boolean;
  /**
   * Umbra (routed sessions): put RFC 6464 audio levels on this publisher's audio packets, so the
   * router can tell who speaks (activeSpeakerChanged). Default true. They travel in clear, as
   * with every SFU, and reveal how loud this participant is at each moment (not what is said);
   * false leaves them out (this stream is then never the active speaker).
   */
  publishAudioLevels?: boolean;
}

// Typed on/once overloads, merged into the class.
export interface Publisher {
  on<K extends keyof PublisherEvents & string>(type: K, handler: (event: PublisherEvents[K]) => void, context?: unknown): this;
  on(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  on(handlers: { [K in keyof PublisherEvents]?: (event: PublisherEvents[K]) => void }, context?: unknown): this;
  on(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
  once<K extends keyof PublisherEvents & string>(type: K, handler: (event: PublisherEvents[K]) => void, context?: unknown): this;
  once(type: `signal:${string}`, handler: (event: SignalEvent) => void, context?: unknown): this;
  once(handlers: { [K in keyof PublisherEvents]?: (event: PublisherEvents[K]) => void }, context?: unknown): this;
  once(type: string | Record<string, Handler>, handler?: Handler | unknown, context?: unknown): this;
}

export class Publisher extends EventEmitter {
  /** The published stream, once `streamCreated` has fired. */
  stream: Stream | null = null;
  session: Session | null = null;
  element: HTMLVideoElement | null = null;
  private media: MediaStream | null = null;
  private view: MediaView | null = null;
  private publication: Publication | null = null;
  private readonly ready: Promise<MediaStream>;

  constructor(
    target: Target,
    readonly properties: PublisherProperties,
    mediaStream?: MediaStream,
  ) {
    super();
    this.ready = mediaStream ? Promise.resolve(mediaStream) : this.acquire();
    this.ready.then(
      (ms) => {
        this.media = ms;
        if (properties.insertDefaultUI !== false) {
          this.view = showMedia(resolveTarget(target), ms, { muted: true, mirror: properties.mirror !== false, className: "OT_publisher umbra-publisher" });
          this.element = this.view?.element ?? null;
          if (this.element) this.dispatch(makeEvent("videoElementCreated", { element: this.element }));
        }
      },
      () => undefined,
    );
  }

  /** Resolves when camera/microphone access is granted; rejects with the OTError otherwise. */
  whenReady(): Promise<MediaStream> {
    return this.ready;
  }

  private async acquire(): Promise<MediaStream> {
    const p = this.properties;
    // As OpenTok.js: a MediaStreamTrack given as a source is published as is (a canvas, a
    // WebAudio graph, a processed camera).
    const audioTrack = isTrack(p.audioSource) ? p.audioSource : null;
    const videoTrack = isTrack(p.videoSource) ? p.videoSource : null;
    const wantAudio = p.publishAudio !== false && p.audioSource !== null && p.audioSource !== false && !audioTrack;
    const wantVideo = p.publishVideo !== false && p.videoSource !== null && p.videoSource !== false && !videoTrack;
    const given = [audioTrack, videoTrack].filter((t): t is MediaStreamTrack => t !== null);
    if (!wantAudio && !wantVideo && given.length > 0) {
      this.dispatch(makeEvent("accessAllowed", {}));
      return new MediaStream(given);
    }
    const md = typeof navigator !== "undefined" ? navigator.mediaDevices : undefined;
    if (!md?.getUserMedia) throw new OTError("OT_MEDIA_ERROR", "this environment cannot capture media (no navigator.mediaDevices.getUserMedia)");
    try {
      let ms: MediaStream;
      if (p.videoSource === "screen") {
        ms = await md.getDisplayMedia({ video: true, audio: wantAudio });
      } else {
        const [w, h] = (p.resolution ?? "1280x720").split("x").map(Number);
        ms = await md.getUserMedia({
          audio: wantAudio ? (typeof p.audioSource === "string" ? { deviceId: { exact: p.audioSource } } : true) : false,
          video: wantVideo
            ? { width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: p.frameRate ?? 30 }, ...(typeof p.videoSource === "string" ? { deviceId: { exact: p.videoSource } } : {}) }
            : false,
        });
      }
      for (const t of given) ms.addTrack(t);
      this.dispatch(makeEvent("accessAllowed", {}));
      return ms;
    } catch (e) {
      this.dispatch(makeEvent("accessDenied", {}));
      const name = e instanceof Error ? e.name : "";
      throw new OTError(
        "OT_MEDIA_ERROR",
        name === "NotAllowedError" ? "camera or microphone access was denied" : `cannot capture media: ${e instanceof Error ? e.message : e}`,
      );
    }
  }

  /** Called by Session.publish once the session allows it. */
  async startPublishing(session: Session, engine: MediaEngine): Promise<void> {
    if (this.publication) throw new OTError("OT_INVALID_PARAMETER", "this publisher is already publishing");
    const media = await this.ready;
    this.session = session;
    this.publication = await engine.publish(
      {
        stream: media,
        name: this.properties.name ?? "",
        videoType: this.properties.videoSource === "screen" ? "screen" : "camera",
        ...(this.properties.preferredVideoCodec ? { preferredVideoCodec: this.properties.preferredVideoCodec } : {}),
        simulcast: this.properties.simulcast !== false,
        ...(this.properties.scalableVideo !== undefined ? { scalableVideo: this.properties.scalableVideo } : {}),
        publishAudioLevels: this.properties.publishAudioLevels !== false,
        onMediaFailure: (message) => {
          const error = new OTError("OT_MEDIA_ERROR", message);
          this.dispatch(makeEvent("exception", { name: error.name, code: error.name, message, error }));
        },
      },
      (message) => this.dispatch(makeEvent("exception", { name: "OT_ENCRYPTION_ERROR", code: "OT_ENCRYPTION_ERROR", message })),
    );
    // The server's stream_created may have arrived before the publish ack (they travel
    // independently): then the session already knows the stream.
    const known = session.streamById(this.publication.streamId);
    if (known) this.onOwnStreamCreated(known);
  }

  /** The id of the stream this publisher publishes, from the moment the server accepted it. */
  get streamId(): string | null {
    return this.publication?.streamId ?? null;
  }

  /** The session saw this publisher's stream appear. */
  onOwnStreamCreated(stream: Stream): void {
    if (!this.publication || stream.streamId !== this.publication.streamId || this.stream?.streamId === stream.streamId) return;
    this.stream = stream;
    this.dispatch(makeEvent("streamCreated", { stream }));
  }

  /** The app unpublished (or the session ended): the publication ends, `streamDestroyed` follows. */
  stopPublishing(): Promise<void> {
    return this.endPublication("unpublished");
  }

  /**
   * The server removed this publisher's stream (a moderator, or its media failed): the
   * publication ends with the server's reason.
   */
  onOwnStreamDestroyed(reason: PublisherStreamDestroyedReason): void {
    void this.endPublication(reason);
  }

  /**
   * The media router failed (`media_failed`) or closed (`media_closed`) this publisher's peer
   * connection: nothing reaches the session any more. A failure is reported as an `exception`
   * (OT_MEDIA_ERROR, the router's message); either way the publication ends (the stream is
   * unpublished for everyone) and `streamDestroyed` follows with `mediaFailed` / `mediaClosed`.
   */
  onMediaEnded(failed: boolean, message: string): void {
    if (!this.publication) return;
    if (failed) {
      const error = new OTError("OT_MEDIA_ERROR", `the media connection of this publisher failed: ${message}`);
      this.dispatch(makeEvent("exception", { name: error.name, code: error.name, message: error.message, error }));
    }
    void this.endPublication(failed ? "mediaFailed" : "mediaClosed");
  }

  /** A moderator forced this publisher's audio off (`mute_forced`): mute it, then tell the app. */
  onMuteForced(): void {
    this.publishAudio(false);
    this.dispatch(makeEvent("muteForced", {}));
  }

  private async endPublication(reason: PublisherStreamDestroyedReason): Promise<void> {
    const pub = this.publication;
    this.publication = null;
    if (!pub) return;
    await pub.stop().catch(() => undefined);
    const stream = this.stream;
    this.stream = null;
    this.dispatch(makeEvent("streamDestroyed", { stream, reason }, true));
  }

  /**
   * Starts or stops sending audio. As in OpenTok.js the stream's `hasAudio` follows, so every
   * participant gets `streamPropertyChanged`.
   */
  publishAudio(on: boolean): void {
    const tracks = this.media?.getAudioTracks() ?? [];
    for (const t of tracks) t.enabled = on;
    if (tracks.length > 0) this.announce({ property: "has_audio", value: on }, this.stream?.hasAudio);
  }

  /** Starts or stops sending video; the stream's `hasVideo` follows, as for audio. */
  publishVideo(on: boolean): void {
    const tracks = this.media?.getVideoTracks() ?? [];
    for (const t of tracks) t.enabled = on;
    if (tracks.length > 0) this.announce({ property: "has_video", value: on }, this.stream?.hasVideo);
  }

  private announce(change: PropertyChange, current: boolean | undefined): void {
    const streamId = this.publication?.streamId;
    if (!streamId || !this.session || current === change.value) return;
    // Best effort: a session that is going away has nobody left to tell.
    this.session.setOwnStreamProperty(streamId, change).catch(() => undefined);
  }

  destroy(): this {
    void this.stopPublishing();
    for (const t of this.media?.getTracks() ?? []) t.stop();
    this.view?.destroy();
    this.view = null;
    this.element = null;
    this.dispatch(makeEvent("destroyed", {}));
    return this;
  }
}
