// The WebRTC media engine: one RTCPeerConnection per published stream (routed: to the media
// router; relayed: one per subscriber) and per subscription, negotiated over signaling
// (docs/signaling.md: publish/subscribe with SDP, trickled ICE, answer and subscribe_offer
// events), with E2EE transforms on every sender and receiver of an encrypted session.
//
// Nothing here pretends: if the server has no media router, `publish` fails with the server's
// media_router_unavailable error.
//
// `media_restart` (cluster mode: the node whose router carried a routed peer connection died or
// drains) gets the publication or subscription a new peer connection, negotiated with
// `renegotiate`; each new transform continues the old one's crypto state in the worker (same
// SFrame KID and counter for a sender, same replay window and verdicts for a receiver), and the
// old peer connection is closed once the new one has its answer. The app sees no event. A
// repeated `media_restart` (replayed after another resume) is refused by the server with
// `bad_request`; the peer connection in place then simply stays.
//
// Routed camera video is simulcast (docs/signaling.md § Simulcast layers): one sender, three rid
// layers (VP9 and AV1: one stream of three spatial layers, SVC_MODE), one encrypt transform for
// all of them, so every layer's frames draw SFrame counters from the same encryptor and no
// counter is used twice under a key. `layers_wanted` pauses the rid layers no subscriber
// receives. Subscribers' wishes go to the router as set_video_preference.

import { OTError } from "../api/errors.js";
import { ignoreUnknown, type IceCandidate, type MediaEvent, type MediaTarget, type PublishStream, type ServerMessageOf, type VideoDimensions } from "../api/signaling-types.js";
import type { E2eeHost } from "./e2ee-host.js";
import { NO_VIDEO_PREFERENCE, type MediaContext, type MediaEngine, type Publication, type PublishRequest, type ReceiveStats, type SubscribeRequest, type Subscription, type VideoPreference } from "./engine.js";

export interface PeerEngineOptions {
  iceServers?: RTCIceServer[];
}

/**
 * The simulcast layers of routed camera video, smallest first: the order of `a=simulcast:send`
 * the router expects (docs/signaling.md § Simulcast layers).
 */
export const SIMULCAST_LAYERS: readonly { rid: string; scaleResolutionDownBy: number; maxBitrate: number }[] = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
];

/** Three temporal layers per spatial layer: the router drops frame rate before resolution. */
const TEMPORAL_MODE = "L1T3";

/**
 * VP9 and AV1 camera video go as one SVC stream instead of rid layers: three spatial layers,
 * each half the next, with three temporal layers, the higher spatial layers predicted from the
 * lower ones only at key pictures (so the router can drop them at any picture). The router
 * reads the layers from the VP9 payload descriptor or the AV1 Dependency Descriptor, both clear
 * under E2EE; each layer's frame is encrypted on its own, by the sender's one encryptor.
 */
const SVC_MODE = "L3T3_KEY";
const SVC_CODECS = ["vp9", "av1"];
/** The three spatial layers together: the sum of the simulcast layers' caps. */
const SVC_MAX_BITRATE = SIMULCAST_LAYERS.reduce((sum, l) => sum + l.maxBitrate, 0);

/**
 * After a layers_wanted changes the encodings, every wanted layer must be encoding: frames
 * counted RESUME_SETTLE_MS after the change must have moved RESUME_CHECK_MS later, else the
 * layer is toggled off and on, at most RESUME_RETRIES times. Firefox ESR 153 sometimes encodes
 * nothing on a resumed rid (2 of 13 runs of firefox-preferred-resolution, for over 10 s), and
 * sometimes stops encoding 'f' when 'q' is turned on beside it (1 of 6 runs of
 * firefox-simulcast-offer); a toggle often restarts it, not always (once in CI 'f' stayed still
 * through both). A subscriber waiting for that layer would otherwise wait for ever. The settle
 * time keeps the last frames of a layer that stops at the change from reading as "still
 * encoding".
 */
const RESUME_SETTLE_MS = 500;
const RESUME_CHECK_MS = 2000;
const RESUME_RETRIES = 2;

/**
 * Only Firefox: Chromium may rightly leave a resumed layer unencoded for a while (its CPU
 * adaptation drops the top layer), and toggling it there would only restart its encoders.
 */
function resumeNeedsWatching(): boolean {
  return typeof navigator !== "undefined" && /Firefox\//.test(navigator.userAgent ?? "");
}

/**
 * The AV1 Dependency Descriptor: how a subscriber's browser tells apart the spatial layer
 * frames of an AV1 SVC picture (each decrypted on its own). Chromium does not offer it on a
 * receive-only transceiver by default, so routed subscriptions ask for it.
 */
const DEPENDENCY_DESCRIPTOR_URI = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/** RFC 6464: the client-to-mixer audio level, carried in clear in an RTP header extension. */
export const AUDIO_LEVEL_URI = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/**
 * Whether the browser says it can encode `codec` with TEMPORAL_MODE. A browser that lists no
 * scalability modes at all (Firefox) is given the mode and may ignore it; one that lists them
 * (Chromium) gets it only if listed, since an unsupported mode makes addTransceiver throw.
 */
function temporalLayersFor(codec: string | undefined): boolean {
  const listed = scalabilityModes(codec);
  return listed === null || listed.includes(TEMPORAL_MODE);
}

/**
 * Whether `codec` goes as SVC (SVC_CODECS) and the browser can encode it with SVC_MODE: as
 * its codec capabilities list it, or, where they list no modes (Chromium 156, Firefox), as
 * `navigator.mediaCapabilities.encodingInfo` says for the WebRTC camera case. Unlike the
 * temporal mode it is never given blind: a browser that ignored it would send one layer where
 * rid layers would have given subscribers a choice. Asked once per codec.
 */
function svcFor(codec: string | undefined, scalableVideo: boolean | undefined): Promise<boolean> {
  const key = (codec ?? "").toLowerCase();
  if (!SVC_CODECS.includes(key)) return Promise.resolve(false);
  // VP9 SVC only when asked: native subscribers decode VP9 but not its spatial layers.
  if (scalableVideo === false || (key === "vp9" && scalableVideo !== true)) return Promise.resolve(false);
  let known = svcSupport.get(key);
  if (!known) {
    known = svcSupported(codec!);
    svcSupport.set(key, known);
  }
  return known;
}

const svcSupport = new Map<string, Promise<boolean>>();

async function svcSupported(codec: string): Promise<boolean> {
  const listed = scalabilityModes(codec);
  if (listed !== null) return listed.includes(SVC_MODE);
  const mc = typeof navigator === "undefined" ? undefined : (navigator as Navigator & { mediaCapabilities?: MediaCapabilities }).mediaCapabilities;
  if (typeof mc?.encodingInfo !== "function") return false;
  try {
    const video = { contentType: `video/${codec}`, width: 1280, height: 720, bitrate: SVC_MAX_BITRATE, framerate: 30, scalabilityMode: SVC_MODE };
    const info = await mc.encodingInfo({ type: "webrtc", video } as MediaEncodingConfiguration);
    return info.supported === true;
  } catch {
    return false;
  }
}

/** The scalability modes the browser lists for `codec` (VP8 by default); null: it lists none. */
function scalabilityModes(codec: string | undefined): string[] | null {
  if (typeof RTCRtpSender === "undefined" || typeof RTCRtpSender.getCapabilities !== "function") return [];
  const want = `video/${codec ?? "VP8"}`.toLowerCase();
  const caps = (RTCRtpSender.getCapabilities("video")?.codecs ?? []) as (RTCRtpCodec & { scalabilityModes?: string[] })[];
  const listed = caps.filter((c) => Array.isArray(c.scalabilityModes));
  if (listed.length === 0) return null;
  return listed.filter((c) => c.mimeType.toLowerCase() === want).flatMap((c) => c.scalabilityModes!);
}

/**
 * The offer as the server gets it: `a=simulcast:send` lists the rids smallest first whatever
 * order the browser wrote, and without audio levels the RFC 6464 extension is left out (the
 * router's answer then lacks it, so the browser never sends it).
 */
export function offerForServer(sdp: string, opts: { audioLevels: boolean }): string {
  const order = SIMULCAST_LAYERS.map((l) => l.rid);
  const rank = (alt: string) => {
    const i = order.indexOf(alt.replace(/^~/, "").split(",")[0]!);
    return i < 0 ? order.length : i;
  };
  const lines = sdp.split("\r\n").filter((line) => {
    if (opts.audioLevels) return true;
    const m = /^a=extmap:\d+(?:\/\w+)? (\S+)/.exec(line);
    return !(m && m[1] === AUDIO_LEVEL_URI);
  });
  return lines
    .map((line) => {
      const m = /^a=simulcast:send (\S+)(.*)$/.exec(line);
      if (!m) return line;
      const alts = m[1]!.split(";");
      const sorted = [...alts].sort((a, b) => rank(a) - rank(b));
      return `a=simulcast:send ${sorted.join(";")}${m[2]}`;
    })
    .join("\r\n");
}

/** The size a video track captures at, when the browser says (the largest layer's size). */
function trackDimensions(stream: MediaStream): VideoDimensions | null {
  const track = stream.getVideoTracks()[0];
  if (!track || typeof track.getSettings !== "function") return null;
  const { width, height } = track.getSettings();
  const ok = (n: unknown): n is number => typeof n === "number" && Number.isInteger(n) && n >= 1 && n <= 16384;
  return ok(width) && ok(height) ? { width, height } : null;
}

/** Frames encoded so far per rid (`outbound-rtp`); empty where the browser cannot say. */
async function framesByRid(sender: RTCRtpSender): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  try {
    (await sender.getStats()).forEach((r: { type?: string; rid?: string; framesEncoded?: number }) => {
      if (r.type === "outbound-rtp" && r.rid && typeof r.framesEncoded === "number") out.set(r.rid, r.framesEncoded);
    });
  } catch {
    // No stats: nothing to compare, so nothing is toggled.
  }
  return out;
}

/** Negotiated codecs of a sender or receiver: the preferred MIME type, and each payload type's. */
function negotiatedCodecs(x: RTCRtpSender | RTCRtpReceiver): [string, Record<number, string>] {
  try {
    const codecs = x.getParameters().codecs ?? [];
    const byPt: Record<number, string> = {};
    for (const c of codecs) if (typeof c.payloadType === "number") byPt[c.payloadType] = c.mimeType;
    return [codecs[0]?.mimeType ?? "", byPt];
  } catch {
    return ["", {}];
  }
}

/** The socket dropped before the server answered (not a refusal by the server). */
function interrupted(e: unknown): boolean {
  return e instanceof OTError && e.name === "OT_NOT_CONNECTED" && e.serverCode === undefined;
}

/**
 * The server has no restart pending for this peer connection: the `media_restart` was one this
 * client had already acted on, replayed after another resume.
 */
function repeated(e: unknown): boolean {
  return e instanceof OTError && e.serverCode === "bad_request";
}

function candidateJson(c: RTCIceCandidate | null): IceCandidate {
  // An empty candidate string is end-of-candidates, as in WebRTC.
  return c ? { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : { candidate: "" };
}

/** Sends a connection's ICE candidates once the id that names it on the server is known. */
class IceOut {
  private target: MediaTarget | null = null;
  private queue: IceCandidate[] = [];
  constructor(private readonly ctx: MediaContext) {}
  send(c: IceCandidate): void {
    if (this.target) void this.ctx.signaling.request({ type: "ice", ...this.target, candidate: c }).catch(() => undefined);
    else this.queue.push(c);
  }
  setTarget(target: MediaTarget): void {
    this.target = target;
    for (const c of this.queue.splice(0)) this.send(c);
  }
}

/** One sender of a routed publication's peer connection, with its transform. */
interface UpstreamSender {
  kind: string;
  transformId: string | null;
  sender: RTCRtpSender;
}

interface PublicationState {
  req: PublishRequest;
  onE2eeError: (m: string) => void;
  /** The rids the router last asked for (`layers_wanted`); null: all (none asked yet). */
  wantedRids?: string[] | null;
  /** setParameters calls, one after the other, each applying the latest wantedRids. */
  layersChain?: Promise<void>;
  answering: Map<string, RTCPeerConnection>;
  /** Routed: the peer connection to the router (replaced by a restart). */
  upstream: { pc: RTCPeerConnection; senders: UpstreamSender[] } | null;
  /** Restarts begun; an answer that arrives for an older one than the latest is dropped. */
  restarts: number;
}

/** One receiver of a subscription's peer connection, with its transform. */
interface DownstreamReceiver {
  kind: string;
  transformId: string;
  receiver: RTCRtpReceiver;
}

interface SubscriptionState {
  req: SubscribeRequest;
  pc: RTCPeerConnection;
  receivers: DownstreamReceiver[];
  restarts: number;
  /** The subscriber's wish for this video, remembered to be sent again after a restart. */
  preference: VideoPreference;
}

function isDefaultPreference(p: VideoPreference): boolean {
  return p.video && p.maxDimensions === null && p.maxFrameRate === null;
}

export class PeerEngine implements MediaEngine {
  private readonly pcsById = new Map<string, RTCPeerConnection>();
  private readonly publications = new Map<string, PublicationState>();
  private readonly subscriptions = new Map<string, SubscriptionState>();
  /** Restarts whose `renegotiate` a dropped socket cut off: redone once it is resumed. */
  private readonly interruptedRestarts: MediaTarget[] = [];
  private closed = false;

  constructor(
    private readonly ctx: MediaContext,
    private readonly e2ee: E2eeHost | null,
    private readonly options: PeerEngineOptions = {},
  ) {
    if (ctx.e2eeSuite !== null && !e2ee) throw new OTError("OT_UNSUPPORTED_BROWSER", "an end-to-end encrypted session needs the E2EE worker");
  }

  setKey(baseKey: Uint8Array, suite: number): Promise<void> {
    return this.e2ee ? this.e2ee.setKey(baseKey, suite) : Promise.resolve();
  }

  private newPc(): RTCPeerConnection {
    const config: RTCConfiguration & { encodedInsertableStreams?: boolean } = { iceServers: this.options.iceServers ?? [], bundlePolicy: "max-bundle" };
    // The createEncodedStreams path only works on peer connections created with this flag.
    if (this.e2ee?.path === "encoded-streams") config.encodedInsertableStreams = true;
    return new RTCPeerConnection(config);
  }

  private encrypt(sender: RTCRtpSender, onE2eeError: (m: string) => void, continues?: string): string | null {
    if (!this.e2ee) return null;
    const onEvent = (event: string, message: string) => {
      if (event === "encryptionInternalError") onE2eeError(message);
    };
    return this.e2ee.attach(sender as unknown as Parameters<E2eeHost["attach"]>[0], "encrypt", "", onEvent, undefined, continues);
  }

  private decrypt(receiver: RTCRtpReceiver, req: SubscribeRequest, continues?: string): string | null {
    if (!this.e2ee) return null;
    const onEvent = (event: string, message: string) => {
      if (event !== "encryptionInternalError") req.onE2eeEvent(event as Parameters<SubscribeRequest["onE2eeEvent"]>[0], message);
    };
    return this.e2ee.attach(receiver as unknown as Parameters<E2eeHost["attach"]>[0], "decrypt", "", onEvent, undefined, continues);
  }

  /** The sendonly transceivers of a routed publication, each sender encrypted before negotiation. */
  private async addSenders(pc: RTCPeerConnection, pub: Pick<PublicationState, "req" | "onE2eeError">, previous: UpstreamSender[]): Promise<UpstreamSender[]> {
    const senders: UpstreamSender[] = [];
    const svc = await svcFor(pub.req.preferredVideoCodec, pub.req.scalableVideo);
    for (const track of pub.req.stream.getTracks()) {
      const t = this.addSendTransceiver(pc, track, pub.req, svc);
      if (track.kind === "video") this.preferCodec(t, pub.req.preferredVideoCodec);
      if (track.kind === "audio" && pub.req.publishAudioLevels === false) stopAudioLevels(t);
      const continues = previous.find((s) => s.kind === track.kind)?.transformId ?? undefined;
      senders.push({ kind: track.kind, transformId: this.encrypt(t.sender, pub.onE2eeError, continues), sender: t.sender });
    }
    return senders;
  }

  /**
   * A sendonly transceiver; routed camera video gets layers: VP9 as one SVC stream where the
   * browser can, else the simulcast rid layers (with temporal layers where the browser can),
   * falling back to fewer features if the browser refuses them.
   */
  private addSendTransceiver(pc: RTCPeerConnection, track: MediaStreamTrack, req: PublishRequest, svc: boolean): RTCRtpTransceiver {
    const init: RTCRtpTransceiverInit = { direction: "sendonly", streams: [req.stream] };
    const simulcast = track.kind === "video" && req.videoType === "camera" && req.simulcast !== false && this.ctx.welcome.media_mode === "routed";
    if (!simulcast) return pc.addTransceiver(track, init);
    if (svc) {
      try {
        const svc = { active: true, scalabilityMode: SVC_MODE, maxBitrate: SVC_MAX_BITRATE };
        return pc.addTransceiver(track, { ...init, sendEncodings: [svc] });
      } catch {
        // Listed but refused for this track: rid layers instead.
      }
    }
    const temporal = temporalLayersFor(req.preferredVideoCodec);
    const layers = (withTemporal: boolean): RTCRtpEncodingParameters[] =>
      SIMULCAST_LAYERS.map((l) => ({ ...l, active: true, ...(withTemporal ? { scalabilityMode: TEMPORAL_MODE } : {}) }));
    try {
      return pc.addTransceiver(track, { ...init, sendEncodings: layers(temporal) });
    } catch (e) {
      if (!temporal) throw e;
      // The browser listed the mode but refused it for this track: simulcast without it.
      return pc.addTransceiver(track, { ...init, sendEncodings: layers(false) });
    }
  }

  private detachAll(ids: (string | null)[]): void {
    for (const id of ids) if (id) this.e2ee?.detach(id);
  }

  private preferCodec(t: RTCRtpTransceiver, codec: string | undefined): void {
    if (!codec || typeof t.setCodecPreferences !== "function" || typeof RTCRtpSender.getCapabilities !== "function") return;
    const caps = RTCRtpSender.getCapabilities("video")?.codecs ?? [];
    const want = `video/${codec}`.toLowerCase();
    const preferred = caps.filter((c) => c.mimeType.toLowerCase() === want);
    if (preferred.length === 0) throw new OTError("OT_INVALID_PARAMETER", `this browser cannot send ${codec} video`);
    // Offer only that codec (plus retransmission and FEC): an answerer that keeps its own order
    // (the router does) would otherwise pick VP8 whatever the offer's order says.
    const helpers = caps.filter((c) => /\/(rtx|red|ulpfec|flexfec-03)$/i.test(c.mimeType));
    t.setCodecPreferences([...preferred, ...helpers]);
  }

  async publish(req: PublishRequest, onE2eeError: (message: string) => void): Promise<Publication> {
    const hasAudio = req.stream.getAudioTracks().length > 0;
    const hasVideo = req.stream.getVideoTracks().length > 0;
    const routed = this.ctx.welcome.media_mode === "routed";
    const stream: PublishStream = { name: req.name, has_audio: hasAudio, has_video: hasVideo, video_type: req.videoType };
    const dimensions = trackDimensions(req.stream);
    if (dimensions) stream.video_dimensions = dimensions;
    if (this.ctx.e2eeSuite !== null) stream.e2ee = { cipher_suite: this.ctx.e2eeSuite };
    if (!routed) {
      // Relayed: announce the stream; each subscriber's offer arrives as subscribe_offer.
      const ack = await this.ctx.signaling.request({ type: "publish", stream });
      const streamId = ack.stream_id;
      const answering = new Map<string, RTCPeerConnection>();
      this.publications.set(streamId, { req, onE2eeError, answering, upstream: null, restarts: 0 });
      return { streamId, stop: () => this.unpublish(streamId) };
    }
    const pc = this.newPc();
    const senders = await this.addSenders(pc, { req, onE2eeError }, []);
    const ice = new IceOut(this.ctx);
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    await pc.setLocalDescription(await pc.createOffer());
    let ack: { stream_id: string; sdp_answer: string | null };
    try {
      ack = await this.ctx.signaling.request({ type: "publish", stream, sdp_offer: this.offerOf(pc, req) });
    } catch (e) {
      pc.close();
      this.detachAll(senders.map((s) => s.transformId));
      throw e;
    }
    const streamId = ack.stream_id;
    this.pcsById.set(streamId, pc);
    ice.setTarget({ stream_id: streamId });
    if (typeof ack.sdp_answer !== "string") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", "the server accepted the publish without an SDP answer");
    await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp_answer });
    for (const s of senders) if (s.transformId) this.e2ee?.setCodec(s.transformId, ...negotiatedCodecs(s.sender));
    const pub: PublicationState = { req, onE2eeError, answering: new Map(), upstream: { pc, senders }, restarts: 0 };
    this.publications.set(streamId, pub);
    return {
      streamId,
      stop: async () => {
        // The senders of the peer connection in place now (a restart may have replaced it).
        this.detachAll(pub.upstream?.senders.map((s) => s.transformId) ?? []);
        await this.unpublish(streamId);
      },
    };
  }

  private offerOf(pc: RTCPeerConnection, req: PublishRequest): string {
    return offerForServer(pc.localDescription!.sdp, { audioLevels: req.publishAudioLevels !== false });
  }

  /**
   * `layers_wanted`: the layers some subscriber receives stay on, the others pause (their
   * encoders stop). Calls run one after the other and each applies the latest list, so a later
   * event wins; a list that changes nothing calls nothing.
   */
  private wantLayers(pub: PublicationState, rids: string[]): void {
    pub.wantedRids = [...rids];
    pub.layersChain = (pub.layersChain ?? Promise.resolve()).then(() => this.applyLayers(pub)).catch(() => undefined);
  }

  private async applyLayers(pub: PublicationState): Promise<void> {
    const rids = pub.wantedRids;
    if (!rids || !pub.upstream) return;
    for (const s of pub.upstream.senders) {
      if (s.kind !== "video") continue;
      const params = s.sender.getParameters();
      let changed = false;
      for (const e of params.encodings ?? []) {
        if (!e.rid) continue;
        const active = rids.includes(e.rid);
        if (e.active !== active) {
          e.active = active;
          changed = true;
        }
      }
      if (!changed) continue;
      await s.sender.setParameters(params);
      const on = (params.encodings ?? []).flatMap((e) => (e.rid && e.active ? [e.rid] : []));
      if (on.length && resumeNeedsWatching()) this.watchEncoding(pub, s.sender, on, RESUME_RETRIES);
    }
  }

  /**
   * `rids` are on: each one still wanted whose encoded frame count does not move between
   * RESUME_SETTLE_MS and RESUME_SETTLE_MS + RESUME_CHECK_MS from now is toggled off and on (in
   * the publication's layer chain, so it never interleaves with a layers_wanted). A rid the
   * browser reports no count for is left alone: nothing says it is stuck.
   */
  private watchEncoding(pub: PublicationState, sender: RTCRtpSender, rids: string[], retries: number): void {
    setTimeout(() => {
      void framesByRid(sender).then((before) => this.checkEncoding(pub, sender, rids, before, retries));
    }, RESUME_SETTLE_MS);
  }

  private checkEncoding(pub: PublicationState, sender: RTCRtpSender, rids: string[], before: Map<string, number>, retries: number): void {
    setTimeout(() => {
      pub.layersChain = (pub.layersChain ?? Promise.resolve())
        .then(async () => {
          if (!pub.upstream?.senders.some((s) => s.sender === sender)) return;
          const now = await framesByRid(sender);
          const stuck = rids.filter((r) => pub.wantedRids?.includes(r) && before.has(r) && now.has(r) && now.get(r)! <= before.get(r)!);
          if (stuck.length === 0) return;
          for (const active of [false, true]) {
            const params = sender.getParameters();
            for (const e of params.encodings ?? []) if (e.rid && stuck.includes(e.rid)) e.active = active;
            await sender.setParameters(params);
          }
          if (retries > 1) this.watchEncoding(pub, sender, stuck, retries - 1);
        })
        .catch(() => undefined);
    }, RESUME_CHECK_MS);
  }

  private async unpublish(streamId: string): Promise<void> {
    const pub = this.publications.get(streamId);
    this.publications.delete(streamId);
    this.pcsById.get(streamId)?.close();
    this.pcsById.delete(streamId);
    for (const pc of pub?.answering.values() ?? []) pc.close();
    if (!this.closed) await this.ctx.signaling.request({ type: "unpublish", stream_id: streamId }).catch(() => undefined);
  }

  /** Relayed sessions: a subscriber's offer for one of our streams; we answer from our own peer connection. */
  private async answerSubscriber(ev: ServerMessageOf<"subscribe_offer">): Promise<void> {
    const pub = this.publications.get(ev.stream_id);
    if (!pub) return;
    const subscriptionId = ev.subscription_id;
    const pc = this.newPc();
    pub.answering.set(subscriptionId, pc);
    this.pcsById.set(subscriptionId, pc);
    const ice = new IceOut(this.ctx);
    ice.setTarget({ subscription_id: subscriptionId });
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    await pc.setRemoteDescription({ type: "offer", sdp: ev.sdp_offer });
    const transforms: [string, RTCRtpSender][] = [];
    for (const track of pub.req.stream.getTracks()) {
      const t = pc.getTransceivers().find((x) => x.receiver.track.kind === track.kind && !x.sender.track);
      if (!t) continue;
      // The transform goes on before the track: no frame may leave unencrypted.
      const id = this.encrypt(t.sender, pub.onE2eeError);
      if (id) transforms.push([id, t.sender]);
      await t.sender.replaceTrack(track);
      t.direction = "sendonly";
    }
    await pc.setLocalDescription(await pc.createAnswer());
    for (const [id, s] of transforms) this.e2ee?.setCodec(id, ...negotiatedCodecs(s));
    await this.ctx.signaling.request({ type: "answer", subscription_id: subscriptionId, sdp_answer: pc.localDescription!.sdp });
  }

  /**
   * A subscription's recvonly peer connection: receivers decrypted before negotiation (each
   * continuing `previous`'s transform of its kind after a restart), tracks shown in a new
   * MediaStream. A failure is reported only while `current()` says it is still the one in use.
   */
  private downstream(req: SubscribeRequest, previous: DownstreamReceiver[], current: (pc: RTCPeerConnection) => boolean): { pc: RTCPeerConnection; receivers: DownstreamReceiver[] } {
    const pc = this.newPc();
    // Relayed: without video wanted, none is negotiated (the publisher's peer connection cannot
    // be told later). Routed: video is negotiated and the router is told what to forward.
    const routed = this.ctx.welcome.media_mode === "routed";
    const wantVideo = routed || (req.preference ?? NO_VIDEO_PREFERENCE).video;
    if (req.hasAudio) pc.addTransceiver("audio", { direction: "recvonly" });
    if (req.hasVideo && wantVideo) {
      const t = pc.addTransceiver("video", { direction: "recvonly" });
      if (routed) negotiateExtension(t, DEPENDENCY_DESCRIPTOR_URI, "recvonly");
    }
    const receivers: DownstreamReceiver[] = [];
    // Receivers exist once the transceivers do: their transforms go on before any frame arrives.
    for (const t of pc.getTransceivers()) {
      const kind = t.receiver.track.kind;
      const id = this.decrypt(t.receiver, req, previous.find((r) => r.kind === kind)?.transformId);
      if (id) receivers.push({ kind, transformId: id, receiver: t.receiver });
    }
    const remote = new MediaStream();
    pc.addEventListener("track", (e) => {
      remote.addTrack(e.track);
      req.onTrack(remote);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed" && current(pc)) req.onFailure("the media connection for this stream failed");
    });
    return { pc, receivers };
  }

  async subscribe(req: SubscribeRequest): Promise<Subscription> {
    let subscriptionId: string | null = null;
    const { pc, receivers } = this.downstream(req, [], (p) => subscriptionId === null || this.subscriptions.get(subscriptionId)?.pc === p);
    const transforms: [string, RTCRtpReceiver][] = receivers.map((r) => [r.transformId, r.receiver]);
    const ice = new IceOut(this.ctx);
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    await pc.setLocalDescription(await pc.createOffer());
    let ack: { subscription_id: string; sdp_answer: string | null };
    try {
      ack = await this.ctx.signaling.request({ type: "subscribe", stream_id: req.streamId, sdp_offer: pc.localDescription!.sdp });
    } catch (e) {
      pc.close();
      for (const [id] of transforms) this.e2ee?.detach(id);
      throw e;
    }
    subscriptionId = ack.subscription_id;
    const id = subscriptionId;
    this.pcsById.set(id, pc);
    const sub: SubscriptionState = { req, pc, receivers, restarts: 0, preference: req.preference ?? NO_VIDEO_PREFERENCE };
    this.subscriptions.set(id, sub);
    ice.setTarget({ subscription_id: id });
    const applyAnswer = async (sdp: string) => {
      await pc.setRemoteDescription({ type: "answer", sdp });
      for (const [id, r] of transforms) this.e2ee?.setCodec(id, ...negotiatedCodecs(r));
    };
    // Routed: the router's answer is in the ack. Relayed: the publisher's arrives as an `answer` event.
    if (typeof ack.sdp_answer === "string") await applyAnswer(ack.sdp_answer);
    else this.pendingAnswers.set(id, applyAnswer);
    if (!isDefaultPreference(sub.preference)) void this.sendPreference(id, sub).catch(() => undefined);
    return {
      subscriptionId: id,
      setVideoPreference: (preference) => {
        sub.preference = { ...preference };
        if (this.subscriptions.get(id) !== sub) return Promise.resolve();
        return this.sendPreference(id, sub);
      },
      audioLevel: () => audioLevelOf(sub.pc),
      getStats: () => receiveStats(sub.pc),
      stop: async () => {
        this.subscriptions.delete(id);
        this.pendingAnswers.delete(id);
        // The peer connection in place now (a restart may have replaced it).
        this.detachAll(sub.receivers.map((r) => r.transformId));
        sub.pc.close();
        this.pcsById.delete(id);
        if (!this.closed) await this.ctx.signaling.request({ type: "unsubscribe", subscription_id: id }).catch(() => undefined);
      },
    };
  }

  /** Routed: tells the router the subscription's current preference. Relayed: nothing to tell. */
  private async sendPreference(id: string, sub: SubscriptionState): Promise<void> {
    if (this.ctx.welcome.media_mode !== "routed" || this.closed) return;
    const p = sub.preference;
    await this.ctx.signaling.request({ type: "set_video_preference", subscription_id: id, video: p.video, max_dimensions: p.maxDimensions, max_frame_rate: p.maxFrameRate });
  }

  /** `media_restart` of a routed publication: a new upstream to the session's new router. */
  private async restartPublication(streamId: string): Promise<void> {
    const pub = this.publications.get(streamId);
    const old = pub?.upstream;
    if (!pub || !old) return;
    const generation = ++pub.restarts;
    const stale = () => this.closed || this.publications.get(streamId) !== pub || pub.restarts !== generation;
    const pc = this.newPc();
    const senders = await this.addSenders(pc, pub, old.senders);
    const ice = new IceOut(this.ctx);
    ice.setTarget({ stream_id: streamId });
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const ack = await this.ctx.signaling.request({ type: "renegotiate", stream_id: streamId, sdp_offer: this.offerOf(pc, pub.req) });
      if (stale()) throw new OTError("OT_NOT_CONNECTED", "superseded");
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp_answer });
    } catch (e) {
      pc.close();
      this.detachAll(senders.map((s) => s.transformId));
      if (stale()) return;
      if (interrupted(e)) return void this.interruptedRestarts.push({ stream_id: streamId });
      if (repeated(e)) return; // the peer connection in place stays
      pub.req.onMediaFailure?.(`the media connection could not be moved to the session's new media router: ${e instanceof Error ? e.message : e}`);
      return;
    }
    for (const s of senders) if (s.transformId) this.e2ee?.setCodec(s.transformId, ...negotiatedCodecs(s.sender));
    pub.upstream = { pc, senders };
    // The new router has not chosen yet: every layer is on (as the new sender starts) until its
    // own layers_wanted.
    pub.wantedRids = null;
    this.pcsById.set(streamId, pc);
    old.pc.close();
    this.detachAll(old.senders.map((s) => s.transformId));
  }

  /** `media_restart` of a subscription: a new downstream from the session's new router. */
  private async restartSubscription(subscriptionId: string): Promise<void> {
    const sub = this.subscriptions.get(subscriptionId);
    if (!sub) return;
    const generation = ++sub.restarts;
    const stale = () => this.closed || this.subscriptions.get(subscriptionId) !== sub || sub.restarts !== generation;
    const { pc, receivers } = this.downstream(sub.req, sub.receivers, (p) => sub.pc === p);
    const ice = new IceOut(this.ctx);
    ice.setTarget({ subscription_id: subscriptionId });
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const ack = await this.ctx.signaling.request({ type: "renegotiate", subscription_id: subscriptionId, sdp_offer: pc.localDescription!.sdp });
      if (stale()) throw new OTError("OT_NOT_CONNECTED", "superseded");
      await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp_answer });
    } catch (e) {
      pc.close();
      this.detachAll(receivers.map((r) => r.transformId));
      if (stale()) return;
      if (interrupted(e)) return void this.interruptedRestarts.push({ subscription_id: subscriptionId });
      if (repeated(e)) return; // the peer connection in place stays
      sub.req.onFailure(`the media connection could not be moved to the session's new media router: ${e instanceof Error ? e.message : e}`);
      return;
    }
    for (const r of receivers) this.e2ee?.setCodec(r.transformId, ...negotiatedCodecs(r.receiver));
    const old = { pc: sub.pc, receivers: sub.receivers };
    sub.pc = pc;
    sub.receivers = receivers;
    this.pcsById.set(subscriptionId, pc);
    old.pc.close();
    this.detachAll(old.receivers.map((r) => r.transformId));
    // The server keeps a preference across a restart; sent again so that a router that took
    // over without it still honours it.
    if (!isDefaultPreference(sub.preference)) void this.sendPreference(subscriptionId, sub).catch(() => undefined);
  }

  private readonly pendingAnswers = new Map<string, (sdp: string) => Promise<void>>();

  handleServerEvent(ev: MediaEvent): boolean {
    switch (ev.type) {
      case "ice": {
        // Candidates of the other end of a relayed subscription (the router does not trickle).
        const pc = this.pcsById.get(ev.subscription_id);
        if (!pc) return false;
        void pc.addIceCandidate(ev.candidate.candidate ? ev.candidate : null).catch(() => undefined);
        return true;
      }
      case "answer": {
        const apply = this.pendingAnswers.get(ev.subscription_id);
        if (!apply) return false;
        this.pendingAnswers.delete(ev.subscription_id);
        void apply(ev.sdp_answer).catch((e: unknown) => this.subscriptions.get(ev.subscription_id)?.req.onFailure(`cannot apply the publisher's answer: ${e instanceof Error ? e.message : e}`));
        return true;
      }
      case "subscribe_offer":
        if (!this.publications.has(ev.stream_id)) return false;
        void this.answerSubscriber(ev).catch(() => undefined);
        return true;
      case "media_restart": {
        if ("stream_id" in ev) {
          if (!this.publications.get(ev.stream_id)?.upstream) return false;
          void this.restartPublication(ev.stream_id);
          return true;
        }
        if (!this.subscriptions.has(ev.subscription_id)) return false;
        void this.restartSubscription(ev.subscription_id);
        return true;
      }
      case "layers_wanted": {
        const pub = this.publications.get(ev.stream_id);
        if (!pub?.upstream) return false;
        this.wantLayers(pub, ev.rids);
        return true;
      }
      case "subscription_ended": {
        const id = ev.subscription_id;
        const sub = this.subscriptions.get(id);
        if (sub) sub.req.onFailure("the publisher ended this subscription");
        let answering = false;
        for (const pub of this.publications.values()) {
          const pc = pub.answering.get(id);
          if (!pc) continue;
          answering = true;
          pc.close();
          pub.answering.delete(id);
        }
        this.pcsById.delete(id);
        return !!sub || answering;
      }
      default:
        ignoreUnknown(ev);
        return false;
    }
  }

  reconnected(): void {
    // The old peer connections are still in place: each restart starts over from them.
    const restarting = new Set<string>();
    for (const target of this.interruptedRestarts.splice(0)) {
      if ("stream_id" in target) void this.restartPublication(target.stream_id);
      else {
        restarting.add(target.subscription_id);
        void this.restartSubscription(target.subscription_id);
      }
    }
    // A preference sent while the socket was down was lost with it; sending it again is harmless.
    for (const [id, sub] of this.subscriptions) {
      if (!restarting.has(id) && !isDefaultPreference(sub.preference)) void this.sendPreference(id, sub).catch(() => undefined);
    }
  }

  close(): void {
    this.closed = true;
    for (const pc of this.pcsById.values()) pc.close();
    this.pcsById.clear();
    this.e2ee?.terminate();
  }
}

/**
 * Leaves the RFC 6464 audio level out of a sender's negotiation where the browser allows it
 * (the offer sent to the server is also stripped of it, see offerForServer).
 */
function stopAudioLevels(t: RTCRtpTransceiver): void {
  // Where the browser refuses, the offer is stripped anyway (offerForServer).
  negotiateExtension(t, AUDIO_LEVEL_URI, "stopped");
}

/**
 * Set one header extension's negotiation direction on a transceiver, where the browser has
 * the API (Chromium) and offers that extension at all; otherwise nothing changes.
 */
function negotiateExtension(t: RTCRtpTransceiver, uri: string, direction: string): void {
  const x = t as RTCRtpTransceiver & {
    getHeaderExtensionsToNegotiate?: () => { uri: string; direction: string }[];
    setHeaderExtensionsToNegotiate?: (exts: { uri: string; direction: string }[]) => void;
  };
  if (typeof x.getHeaderExtensionsToNegotiate !== "function" || typeof x.setHeaderExtensionsToNegotiate !== "function") return;
  try {
    x.setHeaderExtensionsToNegotiate(x.getHeaderExtensionsToNegotiate().map((e) => (e.uri === uri ? { ...e, direction } : e)));
  } catch {
    // A browser that will not change it negotiates its default.
  }
}

/** The level (0 to 1) of the latest audio packet received, from the audio receiver's sources. */
function audioLevelOf(pc: RTCPeerConnection): number | null {
  for (const t of pc.getTransceivers()) {
    const r = t.receiver;
    if (r.track?.kind !== "audio" || typeof r.getSynchronizationSources !== "function") continue;
    const levels = r.getSynchronizationSources().map((s) => s.audioLevel).filter((l): l is number => typeof l === "number");
    if (levels.length > 0) return Math.max(...levels);
  }
  return null;
}

async function receiveStats(pc: RTCPeerConnection): Promise<ReceiveStats> {
  const out: ReceiveStats = { timestamp: Date.now(), audio: null, video: null };
  const report = await pc.getStats();
  const num = (v: unknown) => (typeof v === "number" ? v : 0);
  report.forEach((s: Record<string, unknown>) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "audio") {
      out.audio = { bytesReceived: num(s.bytesReceived), packetsReceived: num(s.packetsReceived), packetsLost: num(s.packetsLost), audioLevel: typeof s.audioLevel === "number" ? s.audioLevel : null };
    } else if (s.kind === "video") {
      out.video = {
        bytesReceived: num(s.bytesReceived),
        packetsReceived: num(s.packetsReceived),
        packetsLost: num(s.packetsLost),
        frameWidth: num(s.frameWidth),
        frameHeight: num(s.frameHeight),
        framesPerSecond: num(s.framesPerSecond),
        framesDecoded: num(s.framesDecoded),
        freezeCount: num(s.freezeCount),
        totalFreezesDuration: num(s.totalFreezesDuration),
      };
    }
  });
  return out;
}
