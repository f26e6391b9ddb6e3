// The session against a real `umbra serve` on loopback, when the binary is available
// (UMBRA_BIN, or target/{release,debug}/umbra under CARGO_TARGET_DIR or the repository). The
// server's own tests cover the server; this checks that the two ends of the signaling protocol
// agree: welcome with e2ee and suite, signals, events, errors for bad tokens and missing secrets.

import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { WebSocket } from "ws";
import type { OTError } from "../src/api/errors.js";
import { Session, type SessionEnvironment } from "../src/api/session.js";
import { SignalingClient, type WebSocketConstructor } from "../src/api/signaling-client.js";
import type { MediaEngine } from "../src/media/engine.js";
import { TESTDATA } from "./support.js";

function findBinary(): string | null {
  const repo = resolve(TESTDATA, "..");
  const targets = [process.env.CARGO_TARGET_DIR, join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "umbra/target"), join(repo, "target")];
  const candidates = [process.env.UMBRA_BIN, ...targets.flatMap((t) => (t ? [join(t, "release/umbra"), join(t, "debug/umbra")] : []))];
  return candidates.find((c): c is string => !!c && existsSync(c)) ?? null;
}

const BIN = findBinary();
const skip = BIN ? false : "no umbra binary (set UMBRA_BIN or build crates/umbra-server)";

async function freePort(): Promise<number> {
  return new Promise((r) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => r(port));
    });
  });
}

const b64url = (v: object | Buffer) => Buffer.from(v instanceof Buffer ? v : JSON.stringify(v)).toString("base64url");
function projectJwt(apiKey: string, secret: string): string {
  const now = Math.floor(Date.now() / 1000);
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url({ iss: apiKey, ist: "project", iat: now, exp: now + 120, jti: String(Math.random()) })}`;
  return `${head}.${b64url(createHmac("sha256", secret).update(head).digest())}`;
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
  close() {}
}

test("against a real umbra serve", { skip, timeout: 60_000 }, async (t) => {
  const data = mkdtempSync(join(tmpdir(), "umbra-web-sdk-"));
  const umbra = (...args: string[]) => execFileSync(BIN!, ["--data-dir", data, ...args], { encoding: "utf8" });
  const project = JSON.parse(umbra("project", "create", "--name", "web-sdk-test", "--e2ee", "--output", "json"));
  const port = await freePort();
  const server = spawn(BIN!, ["--data-dir", data, "serve", "--listen", `127.0.0.1:${port}`], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (d) => (stderr += d));
  t.after(() => {
    server.kill("SIGTERM");
    rmSync(data, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 100) assert.fail(`umbra serve did not come up: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const created = await fetch(`${base}/session/create`, {
    method: "POST",
    headers: { "X-OPENTOK-AUTH": projectJwt(project.api_key, project.api_secret), "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: "e2ee=true&p2p.preference=disabled",
  });
  assert.equal(created.status, 200, await created.clone().text());
  const sessionId: string = (await created.json())[0].session_id;
  const token = (data?: string) => umbra("token", "--project", project.api_key, "--session-id", sessionId, ...(data ? ["--data", data] : [])).trim();
  const env = (engine: MediaEngine): SessionEnvironment => ({
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    e2eeSupport: () => ({ supported: true, path: "script-transform", missing: [] }),
    mediaEngineFactory: () => engine,
    defaultServerUrl: () => null,
    pbkdf2Iterations: 1000,
  });

  const engineA = new NullEngine();
  const alice = new Session(project.api_key, sessionId, { serverUrl: base, encryptionSecret: "a shared secret" }, env(engineA));
  await alice.connect(token("alice"));
  assert.equal(alice.isEndToEndEncrypted, true);
  assert.equal(engineA.keys, 1, "the key was derived for the server's suite and handed to media");

  const seesBob = new Promise<any>((r) => alice.once("connectionCreated", r));
  const bob = new Session(project.api_key, sessionId, { serverUrl: base }, env(new NullEngine()));
  const missing = new Promise<any>((r) => bob.once("exception", r));
  await bob.connect(token("bob"));
  assert.equal((await missing).name, "OT_ENCRYPTION_SECRET_MISSING");
  assert.equal((await seesBob).connection.data, "bob");

  const got = new Promise<any>((r) => bob.once("signal:greeting", r));
  await alice.signal({ type: "greeting", data: "hello bob" });
  const sig = await got;
  assert.deepEqual([sig.data, sig.from.connectionId], ["hello bob", alice.connection!.connectionId]);

  const forged = new Session(project.api_key, sessionId, { serverUrl: base, encryptionSecret: "a shared secret" }, env(new NullEngine()));
  const err = await new Promise<OTError | undefined>((r) => forged.connect(token().slice(0, -4) + "AAAA", r));
  assert.equal(err?.name, "OT_AUTHENTICATION_ERROR");
  assert.match(err!.serverCode ?? "", /^token_/);

  // The publish request as the media engine sends it: the server must understand every field
  // (a mistake would be bad_request) and apply the E2EE rules to it.
  const client = new SignalingClient(`ws://127.0.0.1:${port}/v1/signaling`, WebSocket as unknown as WebSocketConstructor, { onEvent: () => undefined, onDisconnected: () => undefined });
  await client.connect(token(), sessionId);
  const stream = { name: "cam", has_audio: true, has_video: true, video_type: "camera" };
  await assert.rejects(client.request("publish", { stream, sdp_offer: "v=0\r\n" }), (e: OTError) => e.serverCode === "e2ee_required");
  await assert.rejects(client.request("publish", { stream: { ...stream, e2ee: { cipher_suite: 5 } }, sdp_offer: "v=0\r\n" }), (e: OTError) => e.serverCode === "e2ee_cipher_suite_mismatch");
  await assert.rejects(client.request("publish", { stream: { ...stream, e2ee: { cipher_suite: 6 } }, sdp_offer: "v=0\r\n" }), (e: OTError) =>
    ["media_router_unavailable", "media_bad_sdp", "media_router_failed"].includes(e.serverCode ?? ""),
  );
  client.disconnect();

  const bobLeft = new Promise<any>((r) => alice.once("connectionDestroyed", r));
  bob.disconnect();
  assert.equal((await bobLeft).reason, "clientDisconnected");
  alice.disconnect();
});
