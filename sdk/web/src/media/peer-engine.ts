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

import { OTError } from "../api/errors.js";
import { ignoreUnknown, type IceCandidate, type MediaEvent, type MediaTarget, type PublishStream, type ServerMessageOf } from "../api/signaling-types.js";
import type { E2eeHost } from "./e2ee-host.js";
import type { MediaContext, MediaEngine, Publication, PublishRequest, SubscribeRequest, Subscription } from "./engine.js";

export interface PeerEngineOptions {
  iceServers?: RTCIceServer[];
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
  private addSenders(pc: RTCPeerConnection, pub: Pick<PublicationState, "req" | "onE2eeError">, previous: UpstreamSender[]): UpstreamSender[] {
    const senders: UpstreamSender[] = [];
    for (const track of pub.req.stream.getTracks()) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [pub.req.stream] });
      if (track.kind === "video") this.preferCodec(t, pub.req.preferredVideoCodec);
      const continues = previous.find((s) => s.kind === track.kind)?.transformId ?? undefined;
      senders.push({ kind: track.kind, transformId: this.encrypt(t.sender, pub.onE2eeError, continues), sender: t.sender });
    }
    return senders;
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
    const senders = this.addSenders(pc, { req, onE2eeError }, []);
    const ice = new IceOut(this.ctx);
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    await pc.setLocalDescription(await pc.createOffer());
    let ack: { stream_id: string; sdp_answer: string | null };
    try {
      ack = await this.ctx.signaling.request({ type: "publish", stream, sdp_offer: pc.localDescription!.sdp });
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
    if (req.hasAudio) pc.addTransceiver("audio", { direction: "recvonly" });
    if (req.hasVideo) pc.addTransceiver("video", { direction: "recvonly" });
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
    const sub: SubscriptionState = { req, pc, receivers, restarts: 0 };
    this.subscriptions.set(id, sub);
    ice.setTarget({ subscription_id: id });
    const applyAnswer = async (sdp: string) => {
      await pc.setRemoteDescription({ type: "answer", sdp });
      for (const [id, r] of transforms) this.e2ee?.setCodec(id, ...negotiatedCodecs(r));
    };
    // Routed: the router's answer is in the ack. Relayed: the publisher's arrives as an `answer` event.
    if (typeof ack.sdp_answer === "string") await applyAnswer(ack.sdp_answer);
    else this.pendingAnswers.set(id, applyAnswer);
    return {
      subscriptionId: id,
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

  /** `media_restart` of a routed publication: a new upstream to the session's new router. */
  private async restartPublication(streamId: string): Promise<void> {
    const pub = this.publications.get(streamId);
    const old = pub?.upstream;
    if (!pub || !old) return;
    const generation = ++pub.restarts;
    const stale = () => this.closed || this.publications.get(streamId) !== pub || pub.restarts !== generation;
    const pc = this.newPc();
    const senders = this.addSenders(pc, pub, old.senders);
    const ice = new IceOut(this.ctx);
    ice.setTarget({ stream_id: streamId });
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    try {
      await pc.setLocalDescription(await pc.createOffer());
      const ack = await this.ctx.signaling.request({ type: "renegotiate", stream_id: streamId, sdp_offer: pc.localDescription!.sdp });
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
    for (const target of this.interruptedRestarts.splice(0)) {
      if ("stream_id" in target) void this.restartPublication(target.stream_id);
      else void this.restartSubscription(target.subscription_id);
    }
  }

  close(): void {
    this.closed = true;
    for (const pc of this.pcsById.values()) pc.close();
    this.pcsById.clear();
    this.e2ee?.terminate();
  }
}
