// The WebRTC media engine: one RTCPeerConnection per published stream (routed: to the media
// router; relayed: one per subscriber) and per subscription, negotiated over signaling
// (docs/signaling.md: publish/subscribe with SDP, trickled ICE, answer and subscribe_offer
// events), with E2EE transforms on every sender and receiver of an encrypted session.
//
// Nothing here pretends: if the server has no media router, `publish` fails with the server's
// media_router_unavailable error.

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

export class PeerEngine implements MediaEngine {
  private readonly pcsById = new Map<string, RTCPeerConnection>();
  private readonly publications = new Map<string, { req: PublishRequest; onE2eeError: (m: string) => void; answering: Map<string, RTCPeerConnection> }>();
  private readonly subscriptions = new Map<string, { req: SubscribeRequest; pc: RTCPeerConnection; transforms: string[] }>();
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

  private encrypt(sender: RTCRtpSender, onE2eeError: (m: string) => void): string | null {
    if (!this.e2ee) return null;
    return this.e2ee.attach(sender as unknown as Parameters<E2eeHost["attach"]>[0], "encrypt", "", (event, message) => {
      if (event === "encryptionInternalError") onE2eeError(message);
    });
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
      this.publications.set(streamId, { req, onE2eeError, answering });
      return { streamId, stop: () => this.unpublish(streamId) };
    }
    const pc = this.newPc();
    const transforms: string[] = [];
    const senders: RTCRtpSender[] = [];
    for (const track of req.stream.getTracks()) {
      const t = pc.addTransceiver(track, { direction: "sendonly", streams: [req.stream] });
      if (track.kind === "video") this.preferCodec(t, req.preferredVideoCodec);
      const id = this.encrypt(t.sender, onE2eeError);
      if (id) transforms.push(id);
      senders.push(t.sender);
    }
    const ice = new IceOut(this.ctx);
    pc.addEventListener("icecandidate", (e) => ice.send(candidateJson(e.candidate)));
    await pc.setLocalDescription(await pc.createOffer());
    let ack: { stream_id: string; sdp_answer: string | null };
    try {
      ack = await this.ctx.signaling.request({ type: "publish", stream, sdp_offer: pc.localDescription!.sdp });
    } catch (e) {
      pc.close();
      for (const id of transforms) this.e2ee?.detach(id);
      throw e;
    }
    const streamId = ack.stream_id;
    this.pcsById.set(streamId, pc);
    ice.setTarget({ stream_id: streamId });
    if (typeof ack.sdp_answer !== "string") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", "the server accepted the publish without an SDP answer");
    await pc.setRemoteDescription({ type: "answer", sdp: ack.sdp_answer });
    senders.forEach((s, i) => transforms[i] && this.e2ee?.setCodec(transforms[i]!, ...negotiatedCodecs(s)));
    this.publications.set(streamId, { req, onE2eeError, answering: new Map() });
    return {
      streamId,
      stop: async () => {
        for (const id of transforms) this.e2ee?.detach(id);
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

  async subscribe(req: SubscribeRequest): Promise<Subscription> {
    const pc = this.newPc();
    const transforms: [string, RTCRtpReceiver][] = [];
    if (req.hasAudio) pc.addTransceiver("audio", { direction: "recvonly" });
    if (req.hasVideo) pc.addTransceiver("video", { direction: "recvonly" });
    const remote = new MediaStream();
    // Receivers exist once the transceivers do: their transforms go on before any frame arrives.
    for (const t of pc.getTransceivers()) {
      if (!this.e2ee) continue;
      const receiver = t.receiver;
      const id = this.e2ee.attach(receiver as unknown as Parameters<E2eeHost["attach"]>[0], "decrypt", "", (event, message) => {
        if (event !== "encryptionInternalError") req.onE2eeEvent(event, message);
      });
      transforms.push([id, receiver]);
    }
    pc.addEventListener("track", (e) => {
      remote.addTrack(e.track);
      req.onTrack(remote);
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "failed") req.onFailure("the media connection for this stream failed");
    });
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
    const subscriptionId = ack.subscription_id;
    this.pcsById.set(subscriptionId, pc);
    this.subscriptions.set(subscriptionId, { req, pc, transforms: transforms.map(([id]) => id) });
    ice.setTarget({ subscription_id: subscriptionId });
    const applyAnswer = async (sdp: string) => {
      await pc.setRemoteDescription({ type: "answer", sdp });
      for (const [id, r] of transforms) this.e2ee?.setCodec(id, ...negotiatedCodecs(r));
    };
    // Routed: the router's answer is in the ack. Relayed: the publisher's arrives as an `answer` event.
    if (typeof ack.sdp_answer === "string") await applyAnswer(ack.sdp_answer);
    else this.pendingAnswers.set(subscriptionId, applyAnswer);
    return {
      subscriptionId,
      stop: async () => {
        this.subscriptions.delete(subscriptionId);
        this.pendingAnswers.delete(subscriptionId);
        for (const [id] of transforms) this.e2ee?.detach(id);
        pc.close();
        this.pcsById.delete(subscriptionId);
        if (!this.closed) await this.ctx.signaling.request({ type: "unsubscribe", subscription_id: subscriptionId }).catch(() => undefined);
      },
    };
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

  close(): void {
    this.closed = true;
    for (const pc of this.pcsById.values()) pc.close();
    this.pcsById.clear();
    this.e2ee?.terminate();
  }
}
