// The WebRTC media engine's negotiation, with a scripted stand-in for RTCPeerConnection (Node has
// none) and a recording signaling client: what it sends to the server and in which order, that
// every sender and receiver gets its E2EE transform before negotiation, ICE buffering, answers.
// Real media through the router is for the browser tests of issue 5.

import { test } from "node:test";
import assert from "node:assert/strict";
import { E2eeHost, type WorkerLike } from "../src/media/e2ee-host.js";
import { PeerEngine } from "../src/media/peer-engine.js";
import { OTError } from "../src/api/errors.js";
import type { MediaContext } from "../src/media/engine.js";
import type { Joined, Request } from "../src/api/signaling-types.js";
import type { SignalingClient } from "../src/api/signaling-client.js";
import type { ToWorker } from "../src/worker/protocol.js";

const log: string[] = [];

class FakeTrack {
  constructor(readonly kind: string, readonly settings: { width?: number; height?: number } = {}) {}
  getSettings() {
    return this.settings;
  }
}
const codecsOf = (mime: string) => (mime === "audio/opus" ? [{ mimeType: mime, payloadType: 111 }] : [{ mimeType: mime, payloadType: 96 }, { mimeType: "video/H264", payloadType: 102 }]);
class FakeSender {
  transform: unknown = null;
  encodings: { rid?: string; active?: boolean }[] = [];
  /** The `active` flags of each setParameters call, by rid. */
  readonly setCalls: Record<string, boolean>[] = [];
  constructor(public track: FakeTrack | null, private readonly mime: string) {}
  getParameters() {
    return { codecs: codecsOf(this.mime), encodings: this.encodings.map((e) => ({ ...e })) };
  }
  async setParameters(p: { encodings: { rid?: string; active?: boolean }[] }) {
    await new Promise((r) => setTimeout(r, 5)); // a real one takes a while: calls must not overlap
    this.encodings = p.encodings.map((e) => ({ ...e }));
    this.setCalls.push(Object.fromEntries(p.encodings.map((e) => [e.rid ?? "", e.active !== false])));
  }
  /** Frames encoded per rid, as getStats reports them; null: no getStats at all. */
  frames: Record<string, number> | null = null;
  get getStats(): (() => Promise<Map<string, unknown>>) | undefined {
    const frames = this.frames;
    if (!frames) return undefined;
    return async () => new Map(Object.entries(frames).map(([rid, n]) => [rid, { type: "outbound-rtp", rid, framesEncoded: n }]));
  }
  async replaceTrack(t: FakeTrack) {
    log.push(`replaceTrack ${t.kind} (transform set: ${this.transform !== null})`);
    this.track = t;
  }
}
class FakeReceiver {
  transform: unknown = null;
  readonly track: FakeTrack;
  constructor(kind: string, private readonly mime: string) {
    this.track = new FakeTrack(kind);
  }
  getParameters() {
    return { codecs: codecsOf(this.mime) };
  }
}
class FakeTransceiver {
  readonly sender: FakeSender;
  readonly receiver: FakeReceiver;
  constructor(kind: string, track: FakeTrack | null, public direction: string) {
    const mime = kind === "audio" ? "audio/opus" : "video/VP8";
    this.sender = new FakeSender(track, mime);
    this.receiver = new FakeReceiver(kind, mime);
  }
}
class FakePC extends EventTarget {
  static all: FakePC[] = [];
  /** Offers with what a browser writes for simulcast and audio levels (issue 13 tests). */
  static richSdp = false;
  readonly inits: Record<string, unknown>[] = [];
  readonly transceivers: FakeTransceiver[] = [];
  localDescription: { type: string; sdp: string } | null = null;
  remoteDescription: { type: string; sdp: string } | null = null;
  readonly candidates: unknown[] = [];
  connectionState = "new";
  closed = false;
  constructor(readonly config: Record<string, unknown>) {
    super();
    FakePC.all.push(this);
  }
  addTransceiver(trackOrKind: FakeTrack | string, init: { direction: string }) {
    const kind = typeof trackOrKind === "string" ? trackOrKind : trackOrKind.kind;
    const t = new FakeTransceiver(kind, typeof trackOrKind === "string" ? null : trackOrKind, init.direction);
    const encodings = (init as { sendEncodings?: { rid?: string; active?: boolean }[] }).sendEncodings;
    if (encodings) t.sender.encodings = encodings.map((e) => ({ ...e }));
    this.inits.push(init);
    this.transceivers.push(t);
    return t;
  }
  getTransceivers() {
    return this.transceivers;
  }
  async createOffer() {
    const unprotected = this.transceivers.filter((t) => t.sender.transform === null && t.receiver.transform === null).length;
    log.push(`createOffer (${this.transceivers.length} transceivers, ${unprotected} without transform)`);
    let sdp = `offer:${this.transceivers.map((t) => t.receiver.track.kind).join(",")}`;
    if (FakePC.richSdp) {
      for (const t of this.transceivers) {
        if (t.receiver.track.kind === "audio") sdp += "\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid";
        // As some browsers write it: largest first.
        else if (t.sender.encodings.length > 1) sdp += `\r\na=simulcast:send ${t.sender.encodings.map((e) => e.rid).reverse().join(";")}`;
      }
    }
    return { type: "offer", sdp };
  }
  async createAnswer() {
    return { type: "answer", sdp: "answer-from-publisher" };
  }
  async setLocalDescription(d: { type: string; sdp: string }) {
    this.localDescription = d;
    // Gathering starts: two candidates, then end-of-candidates.
    setTimeout(() => {
      for (const c of [{ candidate: "candidate:1 1 udp 1 10.0.0.1 5000 typ host", sdpMid: "0", sdpMLineIndex: 0 }, null]) {
        this.dispatchEvent(Object.assign(new Event("icecandidate"), { candidate: c }));
      }
    }, 1);
  }
  async setRemoteDescription(d: { type: string; sdp: string }) {
    this.remoteDescription = d;
    if (d.type === "offer") for (const kind of d.sdp.replace("offer:", "").split(",")) this.addTransceiver(kind, { direction: "recvonly" });
  }
  async addIceCandidate(c: unknown) {
    this.candidates.push(c);
  }
  close() {
    this.closed = true;
  }
}

class FakeMediaStream {
  readonly tracks: FakeTrack[];
  constructor(tracks: FakeTrack[] = []) {
    this.tracks = [...tracks];
  }
  getTracks() {
    return this.tracks;
  }
  getAudioTracks() {
    return this.tracks.filter((t) => t.kind === "audio");
  }
  getVideoTracks() {
    return this.tracks.filter((t) => t.kind === "video");
  }
  addTrack(t: FakeTrack) {
    this.tracks.push(t);
  }
}

const g = globalThis as Record<string, unknown>;
g.RTCPeerConnection = FakePC;
g.MediaStream = FakeMediaStream;

class RecordingWorker implements WorkerLike {
  readonly messages: ToWorker[] = [];
  private listener: ((e: MessageEvent) => void) | null = null;
  postMessage(m: ToWorker) {
    this.messages.push(m);
    if (m.type === "setKey") queueMicrotask(() => this.listener?.({ data: { type: "keySet", requestId: m.requestId } } as MessageEvent));
  }
  addEventListener(type: string, l: (e: any) => void) {
    if (type === "message") this.listener = l;
  }
  terminate() {}
}

function setup(mediaMode: "routed" | "relayed", answers: Record<string, Record<string, unknown>>) {
  const requests: { type: string; fields: Record<string, unknown> }[] = [];
  const signaling = {
    request: async ({ type, ...fields }: Request) => {
      requests.push({ type, fields });
      log.push(`request ${type}`);
      return answers[type] ?? {};
    },
  } as unknown as SignalingClient;
  const welcome = { media_mode: mediaMode, e2ee: true, cipher_suite: 6 } as Joined;
  const ctx: MediaContext = { signaling, welcome, e2eeSuite: 6 };
  const worker = new RecordingWorker();
  const ScriptTransform = function (this: { options: unknown }, _w: unknown, options: unknown) {
    this.options = options;
  } as unknown as new (w: WorkerLike, o: unknown) => unknown;
  const host = new E2eeHost(worker, "script-transform", ScriptTransform);
  return { engine: new PeerEngine(ctx, host), requests, worker };
}

const settle = () => new Promise((r) => setTimeout(r, 20));

test("routed publish: transforms before the offer, e2ee declared, answer applied, ICE sent with the stream id, codecs told to the worker", { timeout: 30_000 }, async () => {
  log.length = 0;
  FakePC.all = [];
  const { engine, requests, worker } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" } });
  const media = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]) as unknown as MediaStream;
  const pub = await engine.publish({ stream: media, name: "cam", videoType: "camera" }, () => undefined);
  assert.equal(pub.streamId, "st1");
  const pc = FakePC.all[0]!;
  assert.equal(log[0], "createOffer (2 transceivers, 0 without transform)", "no sender exists without its encrypt transform");
  const publish = requests.find((r) => r.type === "publish")!;
  assert.deepEqual(publish.fields.stream, { name: "cam", has_audio: true, has_video: true, video_type: "camera", e2ee: { cipher_suite: 6 } });
  assert.equal(publish.fields.sdp_offer, "offer:audio,video");
  assert.deepEqual(pc.remoteDescription, { type: "answer", sdp: "router-answer" });
  await settle();
  const ice = requests.filter((r) => r.type === "ice");
  assert.deepEqual(ice.map((r) => [r.fields.stream_id, (r.fields.candidate as { candidate: string }).candidate]), [
    ["st1", "candidate:1 1 udp 1 10.0.0.1 5000 typ host"],
    ["st1", ""],
  ]);
  const codecs = worker.messages.filter((m) => m.type === "codec").map((m) => [(m as { mimeType: string }).mimeType, (m as { payloadTypes: object }).payloadTypes]);
  assert.deepEqual(codecs, [
    ["audio/opus", { 111: "audio/opus" }],
    ["video/VP8", { 96: "video/VP8", 102: "video/H264" }],
  ]);
  // The router does not trickle: an `ice` event names a relayed subscription, none of ours here.
  assert.equal(engine.handleServerEvent({ type: "ice", subscription_id: "sub-unknown", from: "publisher", candidate: { candidate: "candidate:2", sdpMid: "0", sdpMLineIndex: 0 } }), false);
  assert.equal(pc.candidates.length, 0);
  await pub.stop();
  assert.equal(pc.closed, true);
  assert.ok(requests.some((r) => r.type === "unpublish" && r.fields.stream_id === "st1"));
  assert.equal(worker.messages.filter((m) => m.type === "close").length, 2, "the worker forgets both transforms");
});

test("a refused publish closes the peer connection and reports the server's error", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine } = setup("routed", {});
  const signaling = (engine as unknown as { ctx: MediaContext }).ctx.signaling as unknown as { request: (t: string) => Promise<unknown> };
  signaling.request = async () => {
    throw Object.assign(new Error("no media router"), { name: "OT_STREAM_CREATE_FAILED", serverCode: "media_router_unavailable" });
  };
  const media = new FakeMediaStream([new FakeTrack("video")]) as unknown as MediaStream;
  await assert.rejects(engine.publish({ stream: media, name: "", videoType: "camera" }, () => undefined), { serverCode: "media_router_unavailable" });
  assert.equal(FakePC.all[0]!.closed, true);
});

test("subscribe: recvonly transceivers with decrypt transforms before the offer; routed answer from the ack; relayed answer from an event", { timeout: 30_000 }, async () => {
  log.length = 0;
  FakePC.all = [];
  const routed = setup("routed", { subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" } });
  const events: string[] = [];
  const sub = await routed.engine.subscribe({
    streamId: "st9", hasAudio: true, hasVideo: true, onTrack: () => undefined,
    onE2eeEvent: (e) => events.push(e), onFailure: (m) => events.push(`failure: ${m}`),
  });
  assert.equal(sub.subscriptionId, "sub1");
  assert.equal(log[0], "createOffer (2 transceivers, 0 without transform)");
  const pc = FakePC.all[0]!;
  assert.deepEqual(pc.transceivers.map((t) => t.direction), ["recvonly", "recvonly"]);
  assert.deepEqual(pc.remoteDescription, { type: "answer", sdp: "router-answer" });
  const subReq = routed.requests.find((r) => r.type === "subscribe")!;
  assert.deepEqual(subReq.fields, { stream_id: "st9", sdp_offer: "offer:audio,video" });
  assert.equal(routed.engine.handleServerEvent({ type: "subscription_ended", subscription_id: "sub1", stream_id: "st9" }), true);
  assert.deepEqual(events, ["failure: the publisher ended this subscription"]);

  FakePC.all = [];
  const relayed = setup("relayed", { subscribe: { subscription_id: "sub2", sdp_answer: null } });
  await relayed.engine.subscribe({ streamId: "st9", hasAudio: false, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: () => undefined });
  const rpc = FakePC.all[0]!;
  assert.equal(rpc.remoteDescription, null, "waits for the publisher's answer");
  assert.equal(relayed.engine.handleServerEvent({ type: "answer", subscription_id: "sub2", stream_id: "st9", sdp_answer: "publisher-answer" }), true);
  await settle();
  assert.deepEqual(rpc.remoteDescription, { type: "answer", sdp: "publisher-answer" });
  // The publisher's candidates reach the subscriber's peer connection; end-of-candidates too.
  assert.equal(relayed.engine.handleServerEvent({ type: "ice", subscription_id: "sub2", from: "publisher", candidate: { candidate: "candidate:3", sdpMid: "0", sdpMLineIndex: 0 } }), true);
  assert.equal(relayed.engine.handleServerEvent({ type: "ice", subscription_id: "sub2", from: "publisher", candidate: { candidate: "" } }), true);
  await settle();
  assert.deepEqual(rpc.candidates, [{ candidate: "candidate:3", sdpMid: "0", sdpMLineIndex: 0 }, null]);
});

test("relayed publish: each subscriber's offer is answered from a new peer connection whose senders are encrypted before tracks go on", { timeout: 30_000 }, async () => {
  log.length = 0;
  FakePC.all = [];
  const { engine, requests } = setup("relayed", { publish: { stream_id: "st5", sdp_answer: null } });
  const media = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]) as unknown as MediaStream;
  const pub = await engine.publish({ stream: media, name: "cam", videoType: "camera" }, () => undefined);
  assert.equal(FakePC.all.length, 0, "no peer connection until someone subscribes");
  assert.equal(requests[0]!.fields.sdp_offer, undefined);
  engine.handleServerEvent({ type: "subscribe_offer", subscription_id: "sub7", stream_id: "st5", subscriber_connection_id: "c2", sdp_offer: "offer:audio,video" });
  await settle();
  assert.deepEqual(log.filter((l) => l.startsWith("replaceTrack")), ["replaceTrack audio (transform set: true)", "replaceTrack video (transform set: true)"]);
  const answer = requests.find((r) => r.type === "answer")!;
  assert.deepEqual(answer.fields, { subscription_id: "sub7", sdp_answer: "answer-from-publisher" });
  assert.ok(requests.some((r) => r.type === "ice" && r.fields.subscription_id === "sub7"));
  await pub.stop();
  assert.equal(FakePC.all[0]!.closed, true);
});

test("media_restart: a new peer connection per publication and subscription, renegotiated under the same ids; transforms continue the old ones; the old peer connection closes after the answer", { timeout: 30_000 }, async () => {
  log.length = 0;
  FakePC.all = [];
  const { engine, requests, worker } = setup("routed", {
    publish: { stream_id: "st1", sdp_answer: "router-answer" },
    subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" },
    renegotiate: { sdp_answer: "new-router-answer" },
  });
  const media = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]) as unknown as MediaStream;
  const failures: string[] = [];
  const pub = await engine.publish({ stream: media, name: "cam", videoType: "camera", onMediaFailure: (m) => failures.push(m) }, () => undefined);
  const tracks: unknown[] = [];
  const sub = await engine.subscribe({
    streamId: "st9", hasAudio: true, hasVideo: true, onTrack: (ms) => tracks.push(ms),
    onE2eeEvent: () => undefined, onFailure: (m) => failures.push(m),
  });
  const [oldPub, oldSub] = FakePC.all as [FakePC, FakePC];
  const optionsOf = (pc: FakePC, side: "sender" | "receiver") => pc.transceivers.map((t) => (t[side].transform as { options: { transformId: string; continues?: string } }).options);

  assert.equal(engine.handleServerEvent({ type: "media_restart", stream_id: "st1" }), true);
  await settle();
  const newPub = FakePC.all[2]!;
  const renegotiatePub = requests.filter((r) => r.type === "renegotiate");
  assert.deepEqual(renegotiatePub.map((r) => r.fields), [{ stream_id: "st1", sdp_offer: "offer:audio,video" }]);
  assert.deepEqual(newPub.transceivers.map((t) => t.direction), ["sendonly", "sendonly"]);
  assert.deepEqual(newPub.remoteDescription, { type: "answer", sdp: "new-router-answer" });
  assert.deepEqual(
    optionsOf(newPub, "sender").map((o) => o.continues),
    optionsOf(oldPub, "sender").map((o) => o.transformId),
    "each new sender's transform continues the old sender's of its kind (same KID, counter goes on)",
  );
  assert.equal(oldPub.closed, true);
  assert.equal(newPub.closed, false);
  const closed = () => worker.messages.filter((m) => m.type === "close").map((m) => (m as { transformId: string }).transformId);
  assert.deepEqual(closed(), optionsOf(oldPub, "sender").map((o) => o.transformId));
  assert.ok(requests.some((r) => r.type === "ice" && r.fields.stream_id === "st1" && FakePC.all.length === 3));

  assert.equal(engine.handleServerEvent({ type: "media_restart", subscription_id: "sub1" }), true);
  await settle();
  const newSub = FakePC.all[3]!;
  assert.deepEqual(requests.filter((r) => r.type === "renegotiate").at(-1)!.fields, { subscription_id: "sub1", sdp_offer: "offer:audio,video" });
  assert.deepEqual(newSub.transceivers.map((t) => t.direction), ["recvonly", "recvonly"]);
  assert.deepEqual(
    optionsOf(newSub, "receiver").map((o) => o.continues),
    optionsOf(oldSub, "receiver").map((o) => o.transformId),
    "each new receiver's transform continues the old one (replay window, verdicts)",
  );
  assert.equal(oldSub.closed, true);
  assert.deepEqual(failures, []);

  // A restart for something this client does not have is not its business.
  assert.equal(engine.handleServerEvent({ type: "media_restart", subscription_id: "sub-unknown" }), false);

  // Stopping releases the peer connections and transforms in place now, not the replaced ones.
  await sub.stop();
  await pub.stop();
  assert.equal(newSub.closed, true);
  assert.equal(newPub.closed, true);
  assert.equal(closed().length, 8, "every transform, old and new, is closed once");
  assert.equal(new Set(closed()).size, 8);
});

test("media_restart refused: the subscriber is told of the failure, the new peer connection is closed", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine } = setup("routed", { subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" } });
  const failures: string[] = [];
  await engine.subscribe({ streamId: "st9", hasAudio: false, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: (m) => failures.push(m) });
  const signaling = (engine as unknown as { ctx: MediaContext }).ctx.signaling as unknown as { request: (r: Request) => Promise<unknown> };
  signaling.request = async () => {
    throw Object.assign(new Error("no such subscription"), { serverCode: "unknown_subscription" });
  };
  engine.handleServerEvent({ type: "media_restart", subscription_id: "sub1" });
  await settle();
  assert.equal(failures.length, 1);
  assert.match(failures[0]!, /could not be moved.*no such subscription/);
  assert.equal(FakePC.all[1]!.closed, true);
});

test("media_restart cut by a dropped socket: nothing reported, the restart is redone once the connection is resumed", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine, requests } = setup("routed", { subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" }, renegotiate: { sdp_answer: "new-router-answer" } });
  const failures: string[] = [];
  await engine.subscribe({ streamId: "st9", hasAudio: false, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: (m) => failures.push(m) });
  const signaling = (engine as unknown as { ctx: MediaContext }).ctx.signaling as unknown as { request: (r: Request) => Promise<unknown> };
  const real = signaling.request;
  signaling.request = async () => {
    throw new OTError("OT_NOT_CONNECTED", "the connection to the session dropped before the server answered");
  };
  engine.handleServerEvent({ type: "media_restart", subscription_id: "sub1" });
  await settle();
  assert.deepEqual(failures, [], "an interrupted renegotiate is not a failure");
  assert.equal(FakePC.all[1]!.closed, true, "its peer connection is dropped");
  assert.equal(FakePC.all[0]!.closed, false, "the old one stays until a restart succeeds");
  signaling.request = real;
  engine.reconnected();
  await settle();
  assert.deepEqual(requests.filter((r) => r.type === "renegotiate").map((r) => r.fields.subscription_id), ["sub1"]);
  const third = FakePC.all[2]!;
  assert.deepEqual(third.remoteDescription, { type: "answer", sdp: "new-router-answer" });
  assert.equal(FakePC.all[0]!.closed, true);
  engine.reconnected();
  await settle();
  assert.equal(FakePC.all.length, 3, "done once");
});

test("a repeated media_restart refused with bad_request (no restart pending) leaves the peer connection in place, silently", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine } = setup("routed", { subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" } });
  const failures: string[] = [];
  await engine.subscribe({ streamId: "st9", hasAudio: false, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: (m) => failures.push(m) });
  const signaling = (engine as unknown as { ctx: MediaContext }).ctx.signaling as unknown as { request: (r: Request) => Promise<unknown> };
  signaling.request = async () => {
    throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", "no media restart is pending for this peer connection", "bad_request");
  };
  engine.handleServerEvent({ type: "media_restart", subscription_id: "sub1" });
  await settle();
  assert.deepEqual(failures, []);
  assert.equal(FakePC.all[0]!.closed, false, "the working peer connection stays");
  assert.equal(FakePC.all[1]!.closed, true);
});

test("issue 13 publish: routed camera video sends q/h/f simulcast (smallest first, L1T3 where listed), the offer lists the rids smallest first, video_dimensions declared; screen share and simulcast:false send one layer", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  FakePC.richSdp = true;
  g.RTCRtpSender = { getCapabilities: () => ({ codecs: [{ mimeType: "video/VP8", scalabilityModes: ["L1T1", "L1T2", "L1T3"] }, { mimeType: "video/H264", scalabilityModes: ["L1T1"] }] }) };
  try {
    const { engine, requests } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" } });
    const cam = () => new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video", { width: 1280, height: 720 })]) as unknown as MediaStream;
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera" }, () => undefined);
    const video = FakePC.all[0]!.inits[1] as { sendEncodings: { rid: string; scaleResolutionDownBy: number; maxBitrate: number; scalabilityMode?: string }[] };
    assert.deepEqual(video.sendEncodings.map((e) => [e.rid, e.scaleResolutionDownBy, e.scalabilityMode]), [["q", 4, "L1T3"], ["h", 2, "L1T3"], ["f", 1, "L1T3"]]);
    assert.ok(video.sendEncodings.every((e, i, all) => i === 0 || e.maxBitrate > all[i - 1]!.maxBitrate));
    assert.equal((FakePC.all[0]!.inits[0] as { sendEncodings?: unknown }).sendEncodings, undefined, "audio: one encoding");
    const publish = requests.find((r) => r.type === "publish")!;
    assert.match(publish.fields.sdp_offer as string, /a=simulcast:send q;h;f(\r\n|$)/);
    assert.match(publish.fields.sdp_offer as string, /ssrc-audio-level/, "audio levels are sent by default");
    assert.deepEqual((publish.fields.stream as { video_dimensions: unknown }).video_dimensions, { width: 1280, height: 720 });

    // H.264 here lists no L1T3: simulcast without temporal layers.
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera", preferredVideoCodec: "H264" }, () => undefined);
    const h264 = FakePC.all[1]!.inits[1] as { sendEncodings: { rid: string; scalabilityMode?: string }[] };
    assert.deepEqual(h264.sendEncodings.map((e) => [e.rid, e.scalabilityMode]), [["q", undefined], ["h", undefined], ["f", undefined]]);

    for (const [videoType, simulcast] of [["screen", true], ["camera", false]] as const) {
      await engine.publish({ stream: cam(), name: "x", videoType, simulcast }, () => undefined);
      assert.equal((FakePC.all.at(-1)!.inits[1] as { sendEncodings?: unknown }).sendEncodings, undefined, `${videoType} simulcast=${simulcast}: one layer`);
    }
  } finally {
    FakePC.richSdp = false;
    delete g.RTCRtpSender;
  }
});

test("issue 13 publish: VP9 (with scalableVideo) and AV1 camera video go as one L3T3_KEY SVC encoding where the browser lists the mode, else as rid layers", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  FakePC.richSdp = true;
  g.RTCRtpSender = { getCapabilities: () => ({ codecs: [
    { mimeType: "video/VP8", scalabilityModes: ["L1T3"] },
    { mimeType: "video/VP9", scalabilityModes: ["L1T3", "L3T3", "L3T3_KEY"] },
    { mimeType: "video/AV1", scalabilityModes: ["L1T3"] },
  ] }) };
  try {
    const { engine, requests } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" } });
    const cam = () => new FakeMediaStream([new FakeTrack("video", { width: 1280, height: 720 })]) as unknown as MediaStream;
    // VP9 without scalableVideo: rid layers (native subscribers cannot decode VP9 SVC).
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera", preferredVideoCodec: "VP9" }, () => undefined);
    const plain = FakePC.all.shift()!.inits[0] as { sendEncodings: { rid?: string }[] };
    assert.deepEqual(plain.sendEncodings.map((e) => e.rid), ["q", "h", "f"]);
    requests.length = 0;
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera", preferredVideoCodec: "VP9", scalableVideo: true }, () => undefined);
    const vp9 = FakePC.all[0]!.inits[0] as { sendEncodings: { rid?: string; scalabilityMode?: string; maxBitrate?: number }[] };
    assert.deepEqual(vp9.sendEncodings.map((e) => [e.rid, e.scalabilityMode]), [[undefined, "L3T3_KEY"]]);
    assert.equal(vp9.sendEncodings[0]!.maxBitrate, 3_150_000, "the three layers' caps together");
    const publish = requests.find((r) => r.type === "publish")!;
    assert.doesNotMatch(publish.fields.sdp_offer as string, /a=simulcast/);
    assert.deepEqual((publish.fields.stream as { video_dimensions: unknown }).video_dimensions, { width: 1280, height: 720 });

    // AV1 here lists no L3T3_KEY: rid layers with temporal layers.
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera", preferredVideoCodec: "AV1" }, () => undefined);
    const av1 = FakePC.all[1]!.inits[0] as { sendEncodings: { rid?: string; scalabilityMode?: string }[] };
    assert.deepEqual(av1.sendEncodings.map((e) => [e.rid, e.scalabilityMode]), [["q", "L1T3"], ["h", "L1T3"], ["f", "L1T3"]]);

    // simulcast: false still means one plain layer.
    await engine.publish({ stream: cam(), name: "cam", videoType: "camera", preferredVideoCodec: "VP9", simulcast: false }, () => undefined);
    assert.equal((FakePC.all[2]!.inits[0] as { sendEncodings?: unknown }).sendEncodings, undefined);
  } finally {
    FakePC.richSdp = false;
    delete g.RTCRtpSender;
  }
});

test("issue 13 publish: publishAudioLevels:false removes the RFC 6464 extmap from the offer (first publish and media_restart), nothing else", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  FakePC.richSdp = true;
  try {
    const { engine, requests } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" }, renegotiate: { sdp_answer: "new-router-answer" } });
    const media = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]) as unknown as MediaStream;
    await engine.publish({ stream: media, name: "cam", videoType: "camera", publishAudioLevels: false }, () => undefined);
    engine.handleServerEvent({ type: "media_restart", stream_id: "st1" });
    await settle();
    const offers = requests.filter((r) => r.type === "publish" || r.type === "renegotiate").map((r) => r.fields.sdp_offer as string);
    assert.equal(offers.length, 2);
    for (const o of offers) {
      assert.doesNotMatch(o, /ssrc-audio-level/);
      assert.match(o, /a=extmap:2 urn:ietf:params:rtp-hdrext:sdes:mid/);
      assert.match(o, /a=simulcast:send q;h;f/);
    }
  } finally {
    FakePC.richSdp = false;
  }
});

test("issue 13 layers_wanted: setParameters with active = listed, one call at a time, the latest list wins, no call when nothing changes; other streams are not ours", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" } });
  const media = new FakeMediaStream([new FakeTrack("audio"), new FakeTrack("video")]) as unknown as MediaStream;
  await engine.publish({ stream: media, name: "cam", videoType: "camera" }, () => undefined);
  const sender = FakePC.all[0]!.transceivers[1]!.sender;
  const audio = FakePC.all[0]!.transceivers[0]!.sender;
  assert.equal(engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q"] }), true);
  assert.equal(engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h"] }), true);
  assert.equal(engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h"] }), true);
  assert.equal(engine.handleServerEvent({ type: "layers_wanted", stream_id: "other", rids: [] }), false);
  await settle();
  // Events that arrive together: the latest list is applied, once.
  assert.deepEqual(sender.setCalls, [{ q: true, h: true, f: false }]);
  // One arriving while a call is under way waits for it, then wins.
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["h"] });
  await new Promise((r) => setTimeout(r, 1));
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h", "f"] });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(sender.setCalls.slice(1), [{ q: false, h: true, f: false }, { q: true, h: true, f: true }]);
  assert.deepEqual(audio.setCalls, [], "audio is not simulcast");
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h", "f"] });
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["f"] });
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(sender.setCalls.at(-1), { q: false, h: false, f: true }, "a later event wins");
  assert.deepEqual(sender.encodings.map((e) => e.active), [false, false, true]);
});

test("issue 13 layers_wanted: a wanted layer that encodes nothing from 0.5 s to 2.5 s after a change is toggled off and on again (Firefox), one that encodes is left alone", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine } = setup("routed", { publish: { stream_id: "st1", sdp_answer: "router-answer" } });
  const media = new FakeMediaStream([new FakeTrack("video")]) as unknown as MediaStream;
  await engine.publish({ stream: media, name: "cam", videoType: "camera" }, () => undefined);
  const sender = FakePC.all[0]!.transceivers[0]!.sender;
  const frames: Record<string, number> = { q: 100, h: 50, f: 30 };
  sender.frames = frames;
  const encode = (...rids: string[]) => rids.forEach((r) => (frames[r] = (frames[r] ?? 0) + 1));
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Watched in Firefox only.
  Object.defineProperty(g, "navigator", { value: { userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0" }, configurable: true });
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q"] });
  await sleep(100);
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h", "f"] });
  await sleep(100);
  assert.equal(sender.setCalls.length, 2);
  // q (on all along) and h (resumed) encode after the settle time, f does not: as Firefox
  // leaving 'f' still, whether it was resumed or on before.
  await sleep(600);
  encode("q", "h");
  await sleep(1900);
  assert.deepEqual(sender.setCalls.slice(2), [{ q: true, h: true, f: false }, { q: true, h: true, f: true }], "f toggled, q and h left alone");
  // Now f encodes: no second toggle.
  await sleep(700);
  encode("f");
  await sleep(2000);
  assert.equal(sender.setCalls.length, 4);
  // A layer paused again before the check is not toggled back on; q keeps encoding.
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q"] });
  await sleep(100);
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "f"] });
  await sleep(100);
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q"] });
  await sleep(700);
  encode("q");
  await sleep(2200);
  assert.deepEqual(sender.setCalls.at(-1), { q: true, h: false, f: false });
  assert.equal(sender.setCalls.length, 7);
  // Without a count for a layer (no stats), nothing is toggled.
  sender.frames = {};
  engine.handleServerEvent({ type: "layers_wanted", stream_id: "st1", rids: ["q", "h"] });
  await sleep(2800);
  assert.equal(sender.setCalls.length, 8);
  delete g.navigator;
});

test("issue 13 set_video_preference: sent with the subscription's id and fields, the first with the subscribe, remembered and sent again after media_restart and after a resume; relayed sends nothing", { timeout: 30_000 }, async () => {
  FakePC.all = [];
  const { engine, requests } = setup("routed", { subscribe: { subscription_id: "sub1", sdp_answer: "router-answer" }, renegotiate: { sdp_answer: "new-router-answer" } });
  const prefs = () => requests.filter((r) => r.type === "set_video_preference").map((r) => r.fields);
  const sub = await engine.subscribe({
    streamId: "st9", hasAudio: true, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: () => undefined,
    preference: { video: true, maxDimensions: null, maxFrameRate: 15 },
  });
  await settle();
  assert.deepEqual(prefs(), [{ subscription_id: "sub1", video: true, max_dimensions: null, max_frame_rate: 15 }]);
  await sub.setVideoPreference({ video: true, maxDimensions: { width: 320, height: 180 }, maxFrameRate: null });
  assert.deepEqual(prefs().at(-1), { subscription_id: "sub1", video: true, max_dimensions: { width: 320, height: 180 }, max_frame_rate: null });
  engine.handleServerEvent({ type: "media_restart", subscription_id: "sub1" });
  await settle();
  const i = requests.findIndex((r) => r.type === "renegotiate");
  assert.ok(i >= 0);
  assert.deepEqual(requests.slice(i + 1).filter((r) => r.type === "set_video_preference").map((r) => r.fields), [
    { subscription_id: "sub1", video: true, max_dimensions: { width: 320, height: 180 }, max_frame_rate: null },
  ], "sent again after the renegotiation");
  const before = prefs().length;
  engine.reconnected();
  await settle();
  assert.equal(prefs().length, before + 1, "sent again after a resume");
  // Back to the default: still sent (the router must forget the limit).
  await sub.setVideoPreference({ video: true, maxDimensions: null, maxFrameRate: null });
  assert.deepEqual(prefs().at(-1), { subscription_id: "sub1", video: true, max_dimensions: null, max_frame_rate: null });
  engine.reconnected();
  await settle();
  assert.equal(prefs().length, before + 2, "nothing to re-send once it is the default");

  FakePC.all = [];
  const relayed = setup("relayed", { subscribe: { subscription_id: "sub2", sdp_answer: null } });
  const rs = await relayed.engine.subscribe({
    streamId: "st9", hasAudio: true, hasVideo: true, onTrack: () => undefined, onE2eeEvent: () => undefined, onFailure: () => undefined,
    preference: { video: false, maxDimensions: null, maxFrameRate: null },
  });
  await rs.setVideoPreference({ video: true, maxDimensions: { width: 320, height: 180 }, maxFrameRate: null });
  assert.deepEqual(relayed.requests.filter((r) => r.type === "set_video_preference"), []);
  assert.deepEqual(FakePC.all[0]!.transceivers.map((t) => t.receiver.track.kind), ["audio"], "relayed without video: none negotiated (as before)");
});
