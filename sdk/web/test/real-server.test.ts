// The session against a real `umbra serve` on loopback, when the binary is available
// (UMBRA_BIN, or target/{release,debug}/umbra under CARGO_TARGET_DIR or the repository). The
// server's own tests cover the server; this checks that the two ends of the signaling protocol
// agree: welcome with e2ee and suite, signals, events, errors for bad tokens and missing secrets,
// a late joiner of a session too large for one welcome, a forced mute.
//
// Every server here binds port 0 for HTTP and for media, so the tests run while another server
// (./scripts/start.sh: 8080 and 7882) is up.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { WebSocket } from "ws";
import type { OTError } from "../src/api/errors.js";
import type { Connection, Stream } from "../src/api/model.js";
import { Publisher } from "../src/api/publisher.js";
import { Session, type SessionEnvironment } from "../src/api/session.js";
import { SignalingClient, type WebSocketConstructor } from "../src/api/signaling-client.js";
import type { PublishStream } from "../src/api/signaling-types.js";
import type { MediaContext, MediaEngine, Publication } from "../src/media/engine.js";
import { clientToken, createSession, Crowd, projectJwt } from "./crowd.js";
import { TESTDATA } from "./support.js";

function findBinary(): string | null {
  const repo = resolve(TESTDATA, "..");
  const targets = [process.env.CARGO_TARGET_DIR, join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "umbra/target"), join(repo, "target")];
  const candidates = [process.env.UMBRA_BIN, ...targets.flatMap((t) => (t ? [join(t, "release/umbra"), join(t, "debug/umbra")] : []))];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

const BIN = findBinary();
const skip = BIN ? false : "no umbra binary (set UMBRA_BIN or build crates/umbra-server)";

/** The native SDK's CLI (crates/umbra-media): UMBRA_MEDIA_BIN, or umbra-media next to where `umbra` is looked for. */
function findMediaBinary(): string | null {
  const repo = resolve(TESTDATA, "..");
  const targets = [process.env.CARGO_TARGET_DIR, join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "umbra/target"), join(repo, "target")];
  const candidates = [process.env.UMBRA_MEDIA_BIN, ...targets.flatMap((t) => (t ? [join(t, "release/umbra-media"), join(t, "debug/umbra-media")] : []))];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

const MEDIA_BIN = findMediaBinary();
const skipMedia = skip || (MEDIA_BIN ? false : "no umbra-media binary (set UMBRA_MEDIA_BIN or cargo build -p umbra-media)");

interface Project {
  api_key: string;
  api_secret: string;
}

interface Server {
  base: string;
  data: string;
  project: Project;
  umbra(...args: string[]): string;
}

/**
 * Starts `umbra serve` with a fresh data directory and project, on ports the kernel picks (HTTP
 * and media router), and returns its URL from the line it prints once bound.
 */
async function startServer(t: { after(fn: () => void): void }): Promise<Server> {
  const data = mkdtempSync(join(tmpdir(), "umbra-web-sdk-"));
  const umbra = (...args: string[]) => execFileSync(BIN!, ["--data-dir", data, ...args], { encoding: "utf8" });
  const project = JSON.parse(umbra("project", "create", "--name", "web-sdk-test", "--e2ee", "--output", "json")) as Project;
  const server = spawn(BIN!, ["--data-dir", data, "serve", "--listen", "127.0.0.1:0", "--media-bind", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (d) => (stderr += d));
  t.after(() => {
    server.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  });
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`umbra serve did not come up in 20 s: ${stderr}`)), 20_000);
    createInterface({ input: server.stdout }).on("line", (line) => {
      const m = /umbra listening on (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    server.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`umbra serve exited with ${code}: ${stderr}`));
    });
  });
  return { base, data, project, umbra };
}

class NullEngine implements MediaEngine {
  keys = 0;
  async setKey() {
    this.keys++;
  }
  async publish(): Promise<never> {
    throw new Error("not used");
  }
  async subscribe(): Promise<never> {
    throw new Error("not used");
  }
  handleServerEvent() {
    return false;
  }
  reconnected() {}
  close() {}
}

/**
 * Publishes by announcing the stream, as in a relayed session before anyone subscribes: the
 * signaling half of a publication, for tests of the session's side (Node has no WebRTC).
 */
class AnnounceEngine implements MediaEngine {
  constructor(private readonly ctx: MediaContext) {}
  async setKey() {}
  async publish(req: { stream: MediaStream; name: string }): Promise<Publication> {
    const stream: PublishStream = { name: req.name, has_audio: req.stream.getAudioTracks().length > 0, has_video: req.stream.getVideoTracks().length > 0, video_type: "camera" };
    const { stream_id } = await this.ctx.signaling.request({ type: "publish", stream });
    return { streamId: stream_id, stop: async () => void (await this.ctx.signaling.request({ type: "unpublish", stream_id }).catch(() => undefined)) };
  }
  async subscribe(): Promise<never> {
    throw new Error("not used");
  }
  handleServerEvent() {
    return false;
  }
  reconnected() {}
  close() {}
}

function env(engine: (ctx: MediaContext) => MediaEngine): SessionEnvironment {
  return {
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    e2eeSupport: () => ({ supported: true, path: "script-transform", missing: [] }),
    mediaEngineFactory: engine,
    defaultServerUrl: () => null,
    pbkdf2Iterations: 1000,
  };
}

const signalingUrlOf = (base: string) => `${base.replace(/^http/, "ws")}/v1/signaling`;

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !cond(); ) {
    if (Date.now() > end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test("against a real umbra serve", { skip, timeout: 60_000 }, async (t) => {
  const { base, project, umbra } = await startServer(t);
  const sessionId = await createSession(base, project.api_key, project.api_secret, "e2ee=true&p2p.preference=disabled");
  const token = (data?: string) => umbra("token", "--project", project.api_key, "--session-id", sessionId, ...(data ? ["--data", data] : [])).trim();

  const engineA = new NullEngine();
  const alice = new Session(project.api_key, sessionId, { serverUrl: base, encryptionSecret: "a shared secret" }, env(() => engineA));
  await alice.connect(token("alice"));
  assert.equal(alice.isEndToEndEncrypted, true);
  assert.equal(engineA.keys, 1, "the key was derived for the server's suite and handed to media");

  const seesBob = new Promise<any>((r) => alice.once("connectionCreated", r));
  const bob = new Session(project.api_key, sessionId, { serverUrl: base }, env(() => new NullEngine()));
  const missing = new Promise<any>((r) => bob.once("exception", r));
  await bob.connect(token("bob"));
  assert.equal((await missing).name, "OT_ENCRYPTION_SECRET_MISSING");
  assert.equal((await seesBob).connection.data, "bob");

  // Signals are end-to-end encrypted (docs/e2ee-protocol.md §12): bob, without the secret, is
  // told he cannot read alice's; with it, he gets it, marked encrypted, under its own type.
  const failed = new Promise<any>((r) => bob.once("signalDecryptionFailed", r));
  await alice.signal({ type: "greeting", data: "hello bob" });
  const f = await failed;
  assert.deepEqual([f.reason, f.from.connectionId], ["EncryptionSecretMissing", alice.connection!.connectionId]);
  await assert.rejects(bob.signal({ data: "not without a secret" }), { name: "OT_ENCRYPTION_SECRET_MISSING" });
  await bob.setEncryptionSecret("a shared secret");
  const got = new Promise<any>((r) => bob.once("signal:greeting", r));
  await alice.signal({ type: "greeting", data: "hello bob" });
  const sig = await got;
  assert.deepEqual([sig.data, sig.from.connectionId, sig.isEncrypted], ["hello bob", alice.connection!.connectionId, true]);

  const forged = new Session(project.api_key, sessionId, { serverUrl: base, encryptionSecret: "a shared secret" }, env(() => new NullEngine()));
  const err = await new Promise<OTError | undefined>((r) => forged.connect(token().slice(0, -4) + "AAAA", r));
  assert.equal(err?.name, "OT_AUTHENTICATION_ERROR");
  assert.equal(err!.serverCode, "token_forged");

  // The publish request as the media engine sends it: the server must understand every field
  // (a mistake would be bad_request) and apply the E2EE rules to it.
  const client = new SignalingClient(signalingUrlOf(base), WebSocket as unknown as WebSocketConstructor, { onEvent: () => undefined, onDisconnected: () => undefined });
  await client.connect(token(), sessionId);
  const stream: PublishStream = { name: "cam", has_audio: true, has_video: true, video_type: "camera" };
  await assert.rejects(client.request({ type: "publish", stream, sdp_offer: "v=0\r\n" }), (e: OTError) => e.serverCode === "e2ee_required");
  await assert.rejects(client.request({ type: "publish", stream: { ...stream, e2ee: { cipher_suite: 5 } }, sdp_offer: "v=0\r\n" }), (e: OTError) => e.serverCode === "e2ee_cipher_suite_mismatch");
  await assert.rejects(client.request({ type: "publish", stream: { ...stream, e2ee: { cipher_suite: 6 } }, sdp_offer: "v=0\r\n" }), (e: OTError) =>
    ["media_router_unavailable", "media_bad_sdp", "media_router_failed"].includes(e.serverCode ?? ""),
  );
  client.disconnect();

  const bobLeft = new Promise<any>((r) => alice.once("connectionDestroyed", r));
  bob.disconnect();
  assert.equal((await bobLeft).reason, "clientDisconnected");
  alice.disconnect();
});

test("a late joiner of a session of 150 connections and 120 streams reports each exactly once, then the later events", { skip, timeout: 120_000 }, async (t) => {
  // More than one page of each (SNAPSHOT_PAGE = 100): the welcome says complete: false and
  // snapshot pages follow; before the SDK read them, a joiner saw only the first 100.
  const { base, project } = await startServer(t);
  const sessionId = await createSession(base, project.api_key, project.api_secret, "p2p.preference=enabled");
  const crowd = await Crowd.gather({ signalingUrl: signalingUrlOf(base), sessionId, apiKey: project.api_key, apiSecret: project.api_secret, connections: 150, streams: 120 });
  t.after(() => crowd.leave());

  const joiner = new Session(project.api_key, sessionId, { serverUrl: base }, env(() => new NullEngine()));
  const seen = { connected: [] as Connection[], connectedStreams: [] as Stream[], connections: [] as string[], streams: [] as string[], goneConnections: [] as string[], goneStreams: [] as string[] };
  joiner.on("sessionConnected", (e) => {
    seen.connected = e.connections;
    seen.connectedStreams = e.streams;
  });
  joiner.on("connectionCreated", (e) => seen.connections.push(e.connection.connectionId));
  joiner.on("streamCreated", (e) => seen.streams.push(e.stream.streamId));
  joiner.on("connectionDestroyed", (e) => seen.goneConnections.push(e.connection.connectionId));
  joiner.on("streamDestroyed", (e) => seen.goneStreams.push(`${e.stream.streamId}:${e.reason}`));
  await joiner.connect(clientToken(project.api_key, project.api_secret, sessionId, "late joiner"));
  t.after(() => joiner.disconnect());
  await waitFor("the initial announcements", () => seen.connections.length >= 150 && seen.streams.length >= 120);
  await new Promise((r) => setTimeout(r, 200)); // anything extra would show up now

  const sorted = (xs: string[]) => [...xs].sort();
  assert.equal(seen.connections.length, 150, "one connectionCreated per connection, no duplicates");
  assert.deepEqual(sorted(seen.connections), sorted(crowd.connectionIds));
  assert.equal(seen.streams.length, 120, "one streamCreated per stream, no duplicates");
  assert.deepEqual(sorted(seen.streams), sorted(crowd.streamIds));
  assert.deepEqual(sorted(seen.connected.map((c) => c.connectionId)), sorted(crowd.connectionIds), "sessionConnected lists every connection");
  assert.deepEqual(sorted(seen.connectedStreams.map((s) => s.streamId)), sorted(crowd.streamIds), "sessionConnected lists every stream");
  assert.ok(!seen.connections.includes(joiner.connection!.connectionId), "its own connection is not announced as another's");

  // Later events: one more connection, one stream unpublished.
  const newcomer = await crowd.add();
  await waitFor("the newcomer's connectionCreated", () => seen.connections.includes(newcomer.connectionId));
  const publisher = crowd.members[7]!;
  const gone = publisher.streams[0]!;
  await publisher.unpublish(gone);
  await waitFor("streamDestroyed", () => seen.goneStreams.length > 0);
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual(seen.goneStreams, [`${gone}:unpublished`]);
  assert.equal(seen.connections.length, 151);
  assert.equal(new Set(seen.connections).size, 151);
  assert.equal(seen.streams.length, 120);
  assert.deepEqual(seen.goneConnections, []);
});

test("a forced mute: the publisher mutes its audio and fires muteForced; everyone sees hasAudio turn false", { skip, timeout: 60_000 }, async (t) => {
  const { base, project } = await startServer(t);
  const sessionId = await createSession(base, project.api_key, project.api_secret, "p2p.preference=enabled");
  const token = (data: string) => clientToken(project.api_key, project.api_secret, sessionId, data);
  const alice = new Session(project.api_key, sessionId, { serverUrl: base }, env((ctx) => new AnnounceEngine(ctx)));
  const bob = new Session(project.api_key, sessionId, { serverUrl: base }, env(() => new NullEngine()));
  await alice.connect(token("alice"));
  await bob.connect(token("bob"));
  t.after(() => {
    alice.disconnect();
    bob.disconnect();
  });
  const audio = { kind: "audio", enabled: true };
  const media = { getTracks: () => [audio], getAudioTracks: () => [audio], getVideoTracks: () => [] } as unknown as MediaStream;
  const publisher = new Publisher(null, { name: "alice" }, media);
  const bobSees = new Promise<any>((r) => bob.once("streamCreated", r));
  const published = new Promise<any>((r) => publisher.once("streamCreated", r));
  const err = await new Promise<OTError | undefined>((r) => alice.publish(publisher, r));
  assert.equal(err, undefined);
  const streamId: string = (await published).stream.streamId;
  assert.equal((await bobSees).stream.hasAudio, true);

  const muteForced = new Promise<any>((r) => publisher.once("muteForced", r));
  const changed = new Promise<any>((r) => bob.once("streamPropertyChanged", r));
  const r = await fetch(`${base}/v2/project/${project.api_key}/session/${sessionId}/stream/${streamId}/mute`, {
    method: "POST",
    headers: { "X-OPENTOK-AUTH": projectJwt(project.api_key, project.api_secret), "Content-Type": "application/json" },
    body: "{}",
  });
  assert.equal(r.status, 200, await r.clone().text());
  await muteForced;
  assert.equal(audio.enabled, false, "the publisher's audio track is off");
  const ev = await changed;
  assert.deepEqual([ev.stream.streamId, ev.changedProperty, ev.oldValue, ev.newValue], [streamId, "hasAudio", true, false]);
  assert.equal(publisher.stream?.hasAudio, false);
});

test("a native publisher (umbra-media publish) as the Web SDK sees it: its stream with the E2EE declaration, then its end", { skip: skipMedia, timeout: 60_000 }, async (t) => {
  const { base, project } = await startServer(t);
  const sessionId = await createSession(base, project.api_key, project.api_secret, "e2ee=true&p2p.preference=disabled");
  const token = (data: string) => clientToken(project.api_key, project.api_secret, sessionId, data);
  const web = new Session(project.api_key, sessionId, { serverUrl: base, encryptionSecret: "correct horse battery staple" }, env(() => new NullEngine()));
  const created = new Promise<any>((r) => web.once("streamCreated", r));
  const destroyed = new Promise<any>((r) => web.once("streamDestroyed", r));
  await web.connect(token("web"));
  t.after(() => web.disconnect());
  const native = spawn(MEDIA_BIN!, ["publish", "--url", base, "--api-key", project.api_key, "--session-id", sessionId, "--token", token("native"),
    "--secret", "correct horse battery staple", "--duration", "3", "--name", "native"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  native.stderr.on("data", (d) => (stderr += d));
  t.after(() => native.kill("SIGKILL"));
  const exited = new Promise<number | null>((r) => native.on("exit", (code) => r(code)));
  const timeout = <T>(p: Promise<T>, what: string) =>
    Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`no ${what} within 30 s; umbra-media: ${stderr}`)), 30_000))]);
  const { stream } = await timeout(created, "streamCreated");
  assert.deepEqual(
    [stream.name, stream.e2ee, stream.cipherSuite, stream.hasAudio, stream.hasVideo, stream.videoType, stream.connection.data],
    ["native", true, 6, true, true, "camera", "native"],
  );
  const gone = await timeout(destroyed, "streamDestroyed");
  assert.equal(gone.stream.streamId, stream.streamId);
  assert.ok(["unpublished", "clientDisconnected"].includes(gone.reason), gone.reason);
  assert.equal(await timeout(exited, "exit"), 0, stderr);
});
