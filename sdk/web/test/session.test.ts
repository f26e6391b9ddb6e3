// The public Session against a loopback signaling server: connect, events, signals, the E2EE
// secret rules and errors, the key handed to the media engine, resume after a dropped socket.

import { test } from "node:test";
import assert from "node:assert/strict";
import { WebSocket } from "ws";
import { bytesToHex, deriveBaseKey } from "../src/e2ee/index.js";
import { OTError } from "../src/api/errors.js";
import { Publisher } from "../src/api/publisher.js";
import { Session, signalingUrl, type SessionEnvironment } from "../src/api/session.js";
import type { Subscriber } from "../src/api/subscriber.js";
import type { WebSocketConstructor } from "../src/api/signaling-client.js";
import type { MediaContext, MediaEngine, PublishRequest, SubscribeRequest, VideoPreference } from "../src/media/engine.js";
import type { MediaEvent } from "../src/api/signaling-types.js";
import { FakeSignalingServer, wireStream } from "./fake-signaling-server.js";
import { readVectors } from "./support.js";

const vectors = readVectors("umbra-e2ee-vectors.json");
const VECTOR_SESSION: string = vectors.frame_base_key.session_id;
const VECTOR_SECRET: string = vectors.frame_base_key.secret;

class FakeEngine implements MediaEngine {
  keys: string[] = [];
  /** When set, publish succeeds with this stream id after running `beforeAck`. */
  publishAs: { streamId: string; beforeAck: () => Promise<void> } | null = null;
  /** When set (and publishAs is not), publish announces the stream over signaling, as in a relayed session. */
  announce = false;
  ctx: MediaContext | null = null;
  subs: SubscribeRequest[] = [];
  /** Publications and subscriptions stopped, by id. */
  stopped: string[] = [];
  closed = false;
  async setKey(k: Uint8Array, suite: number) {
    this.keys.push(`${suite}:${bytesToHex(k)}`);
  }
  async publish(req: PublishRequest) {
    if (this.publishAs) {
      const { streamId, beforeAck } = this.publishAs;
      await beforeAck();
      return { streamId, stop: async () => void this.stopped.push(streamId) };
    }
    if (!this.announce || !this.ctx) throw new OTError("OT_STREAM_CREATE_FAILED", "fake engine does not publish");
    const has_audio = req.stream.getAudioTracks().length > 0;
    const { stream_id } = await this.ctx.signaling.request({ type: "publish", stream: { name: req.name, has_audio, has_video: false, video_type: req.videoType } });
    return { streamId: stream_id, stop: async () => void this.stopped.push(stream_id) };
  }
  async subscribe(req: SubscribeRequest) {
    this.subs.push(req);
    const subscriptionId = `sub-${this.subs.length}`;
    return {
      subscriptionId,
      setVideoPreference: async (p: VideoPreference) => void this.preferences.push([subscriptionId, p]),
      audioLevel: () => this.level,
      getStats: async () => ({ timestamp: 0, audio: null, video: null }),
      stop: async () => void this.stopped.push(subscriptionId),
    };
  }
  /** setVideoPreference calls, by subscription. */
  preferences: [string, VideoPreference][] = [];
  /** What audioLevel() reports. */
  level: number | null = null;
  /** Media events the session handed over. */
  mediaEvents: MediaEvent[] = [];
  handleServerEvent(ev: MediaEvent) {
    this.mediaEvents.push(ev);
    return false;
  }
  /** Times the session told it the signaling connection was resumed. */
  reconnects = 0;
  reconnected() {
    this.reconnects++;
  }
  close() {
    this.closed = true;
  }
}

function env(opts: { supported?: boolean; engine?: FakeEngine | null; iterations?: number } = {}): SessionEnvironment {
  const engine = opts.engine === undefined ? new FakeEngine() : opts.engine;
  return {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    e2eeSupport: () => (opts.supported === false ? { supported: false, path: null, missing: ["WebRTC Encoded Transform"] } : { supported: true, path: "script-transform", missing: [] }),
    mediaEngineFactory: engine
      ? (ctx) => {
          engine.ctx = ctx;
          return engine;
        }
      : null,
    defaultServerUrl: () => null,
    ...(opts.iterations ? { pbkdf2Iterations: opts.iterations } : {}),
  };
}

async function withServer(opts: Partial<ConstructorParameters<typeof FakeSignalingServer>[0]>, fn: (url: string, server: FakeSignalingServer) => Promise<void>) {
  const server = new FakeSignalingServer({ e2ee: false, sessionId: VECTOR_SESSION, ...opts });
  const url = await server.start();
  try {
    await fn(url, server);
  } finally {
    await server.stop();
  }
}

const nextEvent = (target: { once(t: string, h: (e: any) => void): unknown }, type: string) => new Promise<any>((r) => target.once(type, r));

test("signalingUrl maps server URLs to the signaling endpoint", { timeout: 30_000 }, () => {
  assert.equal(signalingUrl("http://127.0.0.1:8080"), "ws://127.0.0.1:8080/v1/signaling");
  assert.equal(signalingUrl("https://video.example.com/base/"), "wss://video.example.com/base/v1/signaling");
  assert.equal(signalingUrl("wss://x.test"), "wss://x.test/v1/signaling");
  assert.throws(() => signalingUrl("ftp://x"), { name: "OT_INVALID_PARAMETER" });
});

test("connect, existing connections and streams, signals both ways, disconnect", { timeout: 30_000 }, async () => {
  await withServer({}, async (url) => {
    const a = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    const b = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    const connected = nextEvent(a, "sessionConnected");
    let cbError: unknown = "not called";
    await a.connect("token-a", (e) => (cbError = e));
    assert.equal(cbError, undefined);
    assert.equal((await connected).type, "sessionConnected");
    assert.equal(a.connection?.connectionId, "conn-1");

    const bStream = nextEvent(b, "streamCreated");
    const aSeesB = nextEvent(a, "connectionCreated");
    await b.connect("token-b");
    assert.equal((await bStream).stream.streamId, "s-existing", "streams already published are announced after connect");
    assert.equal((await aSeesB).connection.connectionId, "conn-2");

    const gotTyped = nextEvent(b, "signal:chat");
    const gotAny = nextEvent(b, "signal");
    await a.signal({ type: "chat", data: "hello, b" });
    const ev = await gotTyped;
    assert.deepEqual([ev.type, ev.signalType, ev.data, ev.from.connectionId], ["signal:chat", "chat", "hello, b", "conn-1"]);
    assert.equal((await gotAny).data, "hello, b");
    await assert.rejects(a.signal({ type: "bad type!", data: "x" }), { name: "OT_INVALID_PARAMETER" });

    const aSeesBLeave = nextEvent(a, "connectionDestroyed");
    const bDisconnected = nextEvent(b, "sessionDisconnected");
    b.disconnect();
    assert.equal((await bDisconnected).reason, "clientDisconnected");
    assert.equal((await aSeesBLeave).reason, "clientDisconnected");
    await assert.rejects(b.signal({ data: "x" }), { name: "OT_NOT_CONNECTED" });
    a.disconnect();
  });
});

test("invalid secrets fail connect with OT_INVALID_ENCRYPTION_SECRET before anything is sent", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url, server) => {
    for (const secret of ["", "1234567", "é".repeat(257), "🔐".repeat(7), "abc\uD800defgh"]) {
      const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: secret }, env());
      let err: OTError | undefined;
      await s.connect("t", (e) => (err = e)).catch(() => undefined);
      assert.equal(err?.name, "OT_INVALID_ENCRYPTION_SECRET", JSON.stringify(secret));
      assert.match(err!.message, /characters|surrogate/);
      await assert.rejects(s.setEncryptionSecret(secret), { name: "OT_INVALID_ENCRYPTION_SECRET" });
    }
    assert.equal(server.clients.length, 0, "no connection was attempted");
    // 8 emoji are 16 UTF-16 units but 8 characters: valid.
    const ok = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "🔐".repeat(8) }, env({ iterations: 1000 }));
    await ok.connect("t");
    ok.disconnect();
  });
});

test("E2EE session: an unsupported browser fails connect with OT_UNSUPPORTED_BROWSER", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url, server) => {
    const unsupported = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ supported: false }));
    unsupported.on("sessionDisconnected", () => assert.fail("a failed connect is no session to disconnect from"));
    await assert.rejects(unsupported.connect("t"), (e: OTError) => e.name === "OT_UNSUPPORTED_BROWSER" && /WebRTC Encoded Transform/.test(e.message));
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(server.clients.length, 0, "it left the session again");
    // A session without E2EE needs neither.
  });
  await withServer({ e2ee: false }, async (url) => {
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env({ supported: false }));
    await s.connect("t");
    assert.equal(s.isEndToEndEncrypted, false);
    s.disconnect();
  });
});

test("E2EE session without a secret: connects, reports OT_ENCRYPTION_SECRET_MISSING, publish and subscribe fail until a secret is set", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env({ engine, iterations: 1000 }));
    const exception = nextEvent(s, "exception");
    const streamEv = nextEvent(s, "streamCreated");
    await s.connect("t");
    const ex = await exception;
    assert.equal(ex.name, "OT_ENCRYPTION_SECRET_MISSING");
    assert.match(ex.message, /setEncryptionSecret/);
    const stream = (await streamEv).stream;
    const fakeMedia = { getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] } as unknown as MediaStream;
    const pubErr = await new Promise<OTError | undefined>((r) => s.publish(new Publisher(null, {}, fakeMedia), r));
    assert.equal(pubErr?.name, "OT_ENCRYPTION_SECRET_MISSING");
    const subErr = await new Promise<OTError | undefined>((r) => s.subscribe(stream, null, {}, r));
    assert.equal(subErr?.name, "OT_ENCRYPTION_SECRET_MISSING");
    assert.equal(engine.subs.length, 0, "no media was touched");
    // Signals are end-to-end encrypted too: never sent in the clear for want of a secret.
    await assert.rejects(s.signal({ data: "not in the clear" }), { name: "OT_ENCRYPTION_SECRET_MISSING" });
    assert.deepEqual(engine.keys, []);
    await s.setEncryptionSecret("now we have one");
    assert.deepEqual(engine.keys, [`6:${bytesToHex(await deriveBaseKey("now we have one", VECTOR_SESSION, 1000))}`]);
    s.subscribe(stream, null, {}, () => undefined);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(engine.subs.length, 1, "subscribing goes ahead once a secret is set");
    s.disconnect();
  });
});

test("E2EE session: the base key handed to media is PBKDF2 of the secret (600000 iterations, vector), and follows setEncryptionSecret", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true, greeting: "hi" }, async (url) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: VECTOR_SECRET }, env({ engine }));
    const order: string[] = [];
    for (const type of ["sessionConnected", "streamCreated", "signal"]) s.on(type, () => order.push(type));
    await s.connect("t");
    await new Promise((r) => setTimeout(r, 20));
    // The signal arrived while the key was being derived: it is delivered after the connect completed.
    assert.deepEqual(order, ["sessionConnected", "streamCreated", "signal"]);
    assert.equal(s.isEndToEndEncrypted, true);
    assert.deepEqual(engine.keys, [`6:${vectors.frame_base_key.base_key}`]);
    await assert.rejects(s.setEncryptionSecret("short"), { name: "OT_INVALID_ENCRYPTION_SECRET" });
    assert.equal(engine.keys.length, 1, "an invalid secret changes nothing");
    await s.setEncryptionSecret("another secret entirely");
    assert.deepEqual(engine.keys.slice(1), [`6:${bytesToHex(await deriveBaseKey("another secret entirely", VECTOR_SESSION))}`]);
    s.disconnect();
    assert.equal(engine.closed, true);
  });
});

test("server refusals map to stable error names", { timeout: 30_000 }, async () => {
  await withServer({}, async (url, server) => {
    const forged = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    await assert.rejects(forged.connect("forged"), (e: OTError) => e.name === "OT_AUTHENTICATION_ERROR" && e.serverCode === "token_forged");
    const wrong = new Session("k", "another-session", { serverUrl: url }, env());
    await assert.rejects(wrong.connect("t"), (e: OTError) => e.name === "OT_AUTHENTICATION_ERROR" && e.serverCode === "token_wrong_session");
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    await s.connect("t");
    server.refuse.set("signal", ["role_forbidden", "publisheronly connections cannot signal"]);
    let err: OTError | undefined;
    await s.signal({ data: "x" }, (e) => (err = e)).catch(() => undefined);
    assert.equal(err?.name, "OT_PERMISSION_DENIED");
    assert.match(err!.message, /cannot signal/);
    s.disconnect();
  });
  const nowhere = new Session("k", VECTOR_SESSION, { serverUrl: "http://127.0.0.1:9" }, env());
  await assert.rejects(nowhere.connect("t"), { name: "OT_CONNECT_FAILED" });
});

test("publish and subscribe: need a connection and media; the subscriber reports mismatch once, then match", { timeout: 30_000 }, async () => {
  const fakeMedia = { getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] } as unknown as MediaStream;
  const offline = new Session("k", VECTOR_SESSION, { serverUrl: "http://127.0.0.1:9" }, env());
  const pubErr = new Promise<OTError | undefined>((r) => offline.publish(new Publisher(null, {}, fakeMedia), r));
  assert.equal((await pubErr)?.name, "OT_NOT_CONNECTED");

  await withServer({ e2ee: true }, async (url) => {
    const noMedia = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ engine: null, iterations: 1000 }));
    await noMedia.connect("t");
    const e1 = await new Promise<OTError | undefined>((r) => noMedia.publish(new Publisher(null, {}, fakeMedia), r));
    assert.equal(e1?.name, "OT_MEDIA_ERROR", "no WebRTC here: an honest failure, not a fake success");
    noMedia.disconnect();

    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ engine, iterations: 1000 }));
    const streamEv = nextEvent(s, "streamCreated");
    await s.connect("t");
    const stream = (await streamEv).stream;
    assert.equal(stream.e2ee, true);
    const events: { sub?: unknown; list: string[] } = { list: [] };
    const done = new Promise<OTError | undefined>((r) => {
      const sub = s.subscribe(stream, null, {}, r);
      events.sub = sub;
      sub.on("encryptionSecretMismatch", () => events.list.push("mismatch"));
      sub.on("encryptionSecretMatch", () => events.list.push("match"));
    });
    await new Promise((r) => setTimeout(r, 10));
    const req = engine.subs[0]!;
    assert.equal(req.streamId, "s-existing");
    req.onE2eeEvent("encryptionSecretMismatch", "differs");
    assert.equal((await done)?.name, "OT_ENCRYPTION_SECRET_MISMATCH", "the subscribe callback gets the mismatch as its error");
    // The audio and the video transform each report; the app hears once per subscriber
    // (found in Chromium: two encryptionSecretMismatch events for one stream).
    req.onE2eeEvent("encryptionSecretMismatch", "differs (audio)");
    req.onE2eeEvent("encryptionSecretMatch", "ok again");
    req.onE2eeEvent("encryptionSecretMatch", "ok again (audio)");
    assert.deepEqual(events.list, ["mismatch", "match"]);
    s.disconnect();
  });
});

test("a subscriber whose publisher sends plain media: streamNotEncrypted once (audio and video), never a mismatch; match when it decrypts", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ engine, iterations: 1000 }));
    const streamEv = nextEvent(s, "streamCreated");
    await s.connect("t");
    const stream = (await streamEv).stream;
    const list: string[] = [];
    let sub: Subscriber | undefined;
    const done = new Promise<OTError | undefined>((r) => {
      sub = s.subscribe(stream, null, {}, r);
      sub.on("encryptionSecretMismatch", () => list.push("mismatch"));
      sub.on("streamNotEncrypted", (e) => list.push(`notEncrypted:${e.error.name}`));
      sub.on("encryptionSecretMatch", () => list.push("match"));
    });
    await new Promise((r) => setTimeout(r, 10));
    const req = engine.subs[0]!;
    req.onE2eeEvent("streamNotEncrypted", "plain video");
    assert.equal((await done)?.name, "OT_STREAM_NOT_ENCRYPTED", "the subscribe callback gets it as its error, not a mismatch");
    req.onE2eeEvent("streamNotEncrypted", "plain audio");
    // The other track judged on fewer frames must not turn it into "check your secret".
    req.onE2eeEvent("encryptionSecretMismatch", "audio looked coherent");
    assert.deepEqual(list, ["notEncrypted:OT_STREAM_NOT_ENCRYPTED"]);
    assert.ok(s.getSubscribersForStream(stream).includes(sub!), "the subscription stays: the stream may decrypt later");
    req.onE2eeEvent("encryptionSecretMatch", "encrypting now");
    req.onE2eeEvent("encryptionSecretMatch", "encrypting now (audio)");
    assert.deepEqual(list, ["notEncrypted:OT_STREAM_NOT_ENCRYPTED", "match"]);
    s.disconnect();
  });
});

test("a dropped socket is resumed and missed events are replayed in order", { timeout: 30_000 }, async () => {
  await withServer({}, async (url, server) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env({ engine }));
    await s.connect("t");
    const c = server.clients[0]!;
    const reconnecting = nextEvent(s, "sessionReconnecting");
    const reconnected = nextEvent(s, "sessionReconnected");
    const signals: string[] = [];
    s.on("signal", (e: { data: string }) => signals.push(e.data));
    server.event(c, { type: "signal", from: null, signal_type: "x", data: "before" });
    await new Promise((r) => setTimeout(r, 30));
    c.ws.terminate();
    await reconnecting;
    server.event(c, { type: "signal", from: null, signal_type: "x", data: "while away 1" });
    server.event(c, { type: "signal", from: null, signal_type: "x", data: "while away 2" });
    await reconnected;
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(signals, ["before", "while away 1", "while away 2"]);
    assert.equal(engine.reconnects, 1, "the media engine is told (it redoes interrupted media restarts)");
    await s.signal({ data: "still works" });
    s.disconnect();
  });
});

test("the publisher fires streamCreated whether the server's stream_created comes before or after the publish ack", { timeout: 30_000 }, async () => {
  await withServer({}, async (url, server) => {
    const fakeMedia = { getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] } as unknown as MediaStream;
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env({ engine }));
    await s.connect("t");
    const c = server.clients[0]!;
    const wire = (id: string) => ({ ...wireStream(id, c.connectionId), name: "me" });
    const sessionStreams: string[] = [];
    s.on("streamCreated", (e) => sessionStreams.push(e.stream.streamId));
    for (const [id, eventFirst] of [["own-early", true], ["own-late", false]] as const) {
      engine.publishAs = {
        streamId: id,
        beforeAck: async () => {
          if (eventFirst) {
            server.event(c, { type: "stream_created", stream: wire(id) });
            await new Promise((r) => setTimeout(r, 30));
          }
        },
      };
      const publisher = new Publisher(null, {}, fakeMedia);
      const created = new Promise<any>((r) => publisher.once("streamCreated", r));
      const err = await new Promise<OTError | undefined>((r) => s.publish(publisher, r));
      assert.equal(err, undefined);
      if (!eventFirst) server.event(c, { type: "stream_created", stream: wire(id) });
      assert.equal((await created).stream.streamId, id);
    }
    assert.deepEqual(sessionStreams.filter((x) => x.startsWith("own")), [], "own streams are announced by the Publisher, not the Session");
    s.disconnect();
  });
});

test("snapshot pages: a joiner of a session of 250 connections and 230 streams reports each exactly once, before any event", { timeout: 30_000 }, async () => {
  await withServer({ population: { connections: 250, streams: 230 }, greeting: "after the pages" }, async (url, server) => {
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    const order: string[] = [];
    const connections: string[] = [];
    const streams: string[] = [];
    let connected: { connections: unknown[]; streams: unknown[] } | null = null;
    s.on("sessionConnected", (e) => {
      connected = e;
      order.push("sessionConnected");
    });
    s.on("connectionCreated", (e) => {
      connections.push(e.connection.connectionId);
      order.push("connectionCreated");
    });
    s.on("streamCreated", (e) => {
      streams.push(e.stream.streamId);
      order.push("streamCreated");
    });
    const signal = nextEvent(s, "signal");
    await s.connect("t");
    assert.equal((await signal).data, "after the pages");
    // The welcome and two snapshot pages (100 + 100 + 50 connections; 100 + 100 + 31 streams).
    assert.deepEqual(server.clients[0]!.pages.map((p) => p.type), ["welcome", "snapshot", "snapshot"]);
    assert.equal(connections.length, 250);
    assert.deepEqual(new Set(connections), new Set(Array.from({ length: 250 }, (_, i) => `pop-${i}`)));
    assert.equal(streams.length, 231);
    assert.deepEqual(new Set(streams), new Set([...Array.from({ length: 230 }, (_, i) => `pop-stream-${i}`), "s-existing"]));
    assert.equal(connected!.connections.length, 250, "sessionConnected lists every page's connections");
    assert.equal(connected!.streams.length, 231, "and every page's streams");
    // Nothing is announced before the state is whole, and the first event comes after all of it.
    assert.equal(order[0], "sessionConnected");
    assert.equal(order.length, 1 + 250 + 231);
    s.disconnect();
  });
});

test("mute_forced: the publisher mutes its audio (publishAudio(false): track off, hasAudio false for everyone) and fires muteForced", { timeout: 30_000 }, async () => {
  await withServer({ mediaMode: "relayed" }, async (url, server) => {
    const engine = new FakeEngine();
    engine.announce = true;
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url }, env({ engine }));
    const observer = new Session("k", VECTOR_SESSION, { serverUrl: url }, env());
    await s.connect("t");
    await observer.connect("t2");
    const audio = { kind: "audio", enabled: true };
    const media = { getTracks: () => [audio], getAudioTracks: () => [audio], getVideoTracks: () => [] } as unknown as MediaStream;
    const publisher = new Publisher(null, {}, media);
    const created = nextEvent(publisher, "streamCreated");
    const seen = nextEvent(observer, "streamCreated");
    assert.equal(await new Promise<OTError | undefined>((r) => s.publish(publisher, r)), undefined);
    const streamId: string = (await created).stream.streamId;
    assert.equal((await seen).stream.hasAudio, true);

    const events: string[] = [];
    publisher.on("muteForced", () => events.push("muteForced"));
    // A mute for another stream is not this publisher's.
    server.event(server.clients[0]!, { type: "mute_forced", stream_id: "someone-else" });
    const changed = nextEvent(observer, "streamPropertyChanged");
    const forced = nextEvent(publisher, "muteForced");
    server.event(server.clients[0]!, { type: "mute_forced", stream_id: streamId });
    await forced;
    assert.deepEqual(events, ["muteForced"], "once, for its own stream only");
    assert.equal(audio.enabled, false, "the audio track is off");
    const ev = await changed;
    assert.deepEqual(
      server.clients[0]!.received.filter((m) => m.type === "set_stream_property"),
      [{ type: "set_stream_property", id: 2, stream_id: streamId, property: "has_audio", value: false }],
      "the stream's hasAudio follows, as publishAudio(false) does",
    );
    assert.deepEqual([ev.stream.streamId, ev.changedProperty, ev.oldValue, ev.newValue], [streamId, "hasAudio", true, false]);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(publisher.stream?.hasAudio, false);
    // Muting again changes nothing on the wire.
    publisher.publishAudio(false);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(server.clients[0]!.received.filter((m) => m.type === "set_stream_property").length, 1);
    s.disconnect();
    observer.disconnect();
  });
});

test("media_failed / media_closed: the publisher or subscriber concerned reports an exception (failed) and ends", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url, server) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ engine, iterations: 1000 }));
    const streamEv = nextEvent(s, "streamCreated");
    await s.connect("t");
    const c = server.clients[0]!;
    const stream = (await streamEv).stream;

    // Publisher: the router failed its peer connection.
    engine.publishAs = { streamId: "own-1", beforeAck: async () => undefined };
    const fakeMedia = { getTracks: () => [], getAudioTracks: () => [], getVideoTracks: () => [] } as unknown as MediaStream;
    const publisher = new Publisher(null, {}, fakeMedia);
    const pubEvents: string[] = [];
    publisher.on("exception", (e) => pubEvents.push(`exception:${e.name}:${e.message}`));
    publisher.on("streamDestroyed", (e) => pubEvents.push(`streamDestroyed:${e.reason}`));
    assert.equal(await new Promise<OTError | undefined>((r) => s.publish(publisher, r)), undefined);
    server.event(c, { type: "stream_created", stream: wireStream("own-1", c.connectionId, true) });
    await nextEvent(publisher, "streamCreated");
    const destroyed = nextEvent(publisher, "streamDestroyed");
    server.event(c, { type: "media_failed", stream_id: "own-1", message: "ICE timed out" });
    await destroyed;
    assert.deepEqual(pubEvents, ["exception:OT_MEDIA_ERROR:the media connection of this publisher failed: ICE timed out", "streamDestroyed:mediaFailed"]);
    assert.ok(engine.stopped.includes("own-1"), "the publication was ended (and unpublished)");
    assert.equal(publisher.stream, null);

    // Subscriber still waiting for its first frame: the callback gets the failure.
    const subEvents: string[] = [];
    let sub1: ReturnType<Session["subscribe"]> | undefined;
    const callback = new Promise<OTError | undefined>((r) => {
      sub1 = s.subscribe(stream, null, {}, r);
    });
    sub1!.on("exception", (e) => subEvents.push(`exception:${e.name}`));
    sub1!.on("destroyed", (e) => subEvents.push(`destroyed:${e.reason}`));
    await new Promise((r) => setTimeout(r, 20));
    server.event(c, { type: "media_failed", subscription_id: "sub-1", message: "DTLS failed" });
    const cbErr = await callback;
    assert.equal(cbErr?.name, "OT_MEDIA_ERROR");
    assert.match(cbErr!.message, /DTLS failed/);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(subEvents, ["exception:OT_MEDIA_ERROR", "destroyed:mediaFailed"]);
    assert.deepEqual(s.getSubscribersForStream(stream), [], "the session let go of it");
    assert.ok(engine.stopped.includes("sub-1"));
    // A second report of the same failure (the peer connection's own state) changes nothing.
    engine.subs[0]!.onFailure("the media connection for this stream failed");
    server.event(c, { type: "media_failed", subscription_id: "sub-1", message: "again" });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(subEvents.length, 2);

    // media_closed (the stream ended at the router): destroyed, no exception.
    const sub2 = s.subscribe(stream, null, {}, () => undefined);
    const sub2Events: string[] = [];
    sub2.on("exception", () => sub2Events.push("exception"));
    sub2.on("destroyed", (e) => sub2Events.push(`destroyed:${e.reason}`));
    await new Promise((r) => setTimeout(r, 20));
    server.event(c, { type: "media_closed", subscription_id: "sub-2", message: "StreamEnded" });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sub2Events, ["destroyed:mediaClosed"]);

    // A subscriber the app kept with streamDestroyed's preventDefault stays the app's to remove.
    const sub3 = s.subscribe(stream, null, {}, () => undefined);
    const sub3Events: string[] = [];
    sub3.on("destroyed", (e) => sub3Events.push(`destroyed:${e.reason}`));
    await new Promise((r) => setTimeout(r, 20));
    s.once("streamDestroyed", (e) => e.preventDefault());
    server.event(c, { type: "stream_destroyed", stream: wireStream("s-existing", "conn-x", true), reason: "unpublished" });
    server.event(c, { type: "media_closed", subscription_id: "sub-3", message: "StreamEnded" });
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sub3Events, []);
    assert.equal(s.getSubscribersForStream(stream).length, 1);
    s.unsubscribe(sub3);
    await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(sub3Events, ["destroyed:unsubscribed"]);
    s.disconnect();
  });
});

test("issue 13: layers_wanted reaches the engine; video_layer_changed -> videoLayerChanged (also before the subscription is known); preferences go to the engine in call order; activeSpeakerChanged names the Stream or null; audioLevelUpdated only while listened to", { timeout: 30_000 }, async () => {
  await withServer({ e2ee: true }, async (url, server) => {
    const engine = new FakeEngine();
    const s = new Session("k", VECTOR_SESSION, { serverUrl: url, encryptionSecret: "a good secret" }, env({ engine, iterations: 1000 }));
    const streamEv = nextEvent(s, "streamCreated");
    await s.connect("t");
    const c = server.clients[0]!;
    const stream = (await streamEv).stream;
    const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

    server.event(c, { type: "layers_wanted", stream_id: "own-1", rids: ["q", "f"] });
    await tick();
    assert.deepEqual(engine.mediaEvents, [{ type: "layers_wanted", stream_id: "own-1", rids: ["q", "f"], seq: engine.mediaEvents[0]?.["seq" as never] }]);

    // The router may name the subscription's layer before the subscribe is acked.
    server.event(c, { type: "video_layer_changed", subscription_id: "sub-1", rid: "f", temporal_layer: 2, paused: false });
    await tick();
    const sub = s.subscribe(stream, null, { preferredFrameRate: 15 }, () => undefined);
    const layers: unknown[] = [];
    sub.on("videoLayerChanged", (e) => layers.push([e.rid, e.temporalLayer, e.paused]));
    sub.setPreferredResolution({ width: 320, height: 180 });
    await tick();
    assert.deepEqual(engine.subs[0]!.preference, { video: true, maxDimensions: { width: 320, height: 180 }, maxFrameRate: 15 }, "what was asked before the subscribe goes with it");
    assert.deepEqual(sub.videoLayer, { rid: "f", temporalLayer: 2, paused: false });
    server.event(c, { type: "video_layer_changed", subscription_id: "sub-1", rid: "q", temporal_layer: null, paused: false });
    await tick();
    assert.deepEqual(layers, [["f", 2, false], ["q", null, false]]);
    assert.deepEqual((await sub.getStats()).videoLayer, { rid: "q", temporalLayer: null, paused: false });

    sub.setPreferredResolution(null).subscribeToVideo(false).setPreferredFrameRate(null).subscribeToVideo(true);
    assert.throws(() => sub.setPreferredResolution({ width: 0, height: 10 }), { name: "OT_INVALID_PARAMETER" });
    assert.throws(() => sub.setPreferredFrameRate(-1), { name: "OT_INVALID_PARAMETER" });
    await tick();
    assert.deepEqual(engine.preferences, [
      ["sub-1", { video: true, maxDimensions: null, maxFrameRate: 15 }],
      ["sub-1", { video: false, maxDimensions: null, maxFrameRate: 15 }],
      ["sub-1", { video: false, maxDimensions: null, maxFrameRate: null }],
      ["sub-1", { video: true, maxDimensions: null, maxFrameRate: null }],
    ]);

    // Active speaker: the Stream object, then null when the router says nobody.
    const speakers: (string | null)[] = [];
    s.on("activeSpeakerChanged", (e) => speakers.push(e.stream ? e.stream.streamId : null));
    server.event(c, { type: "active_speaker_changed", stream_id: "s-existing", connection_id: "conn-x" });
    server.event(c, { type: "active_speaker_changed", stream_id: "s-existing", connection_id: "conn-x" });
    server.event(c, { type: "active_speaker_changed", stream_id: null, connection_id: null });
    await tick();
    assert.deepEqual(speakers, ["s-existing", null], "a repeat of the same speaker is not an event");

    // audioLevelUpdated: nothing asked of the engine's level until someone listens.
    engine.level = 0.5;
    const levels: number[] = [];
    await tick(300);
    const handler = (e: { audioLevel: number }) => levels.push(e.audioLevel);
    sub.on("audioLevelUpdated", handler);
    await tick(600);
    assert.ok(levels.length >= 2 && levels.length <= 3, `about 4 Hz: ${levels.length} in 600 ms`);
    assert.ok(levels.every((l) => l === 0.5));
    sub.off("audioLevelUpdated", handler);
    const n = levels.length;
    await tick(400);
    assert.equal(levels.length, n, "stops when nobody listens");
    s.disconnect();
  });
});
