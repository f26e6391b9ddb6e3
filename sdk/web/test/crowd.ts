// Cheap protocol-level participants for tests against a real `umbra serve`: plain WebSocket
// clients that speak signaling v1 with the generated types (no media, no SDK), to fill a session
// with many connections and streams before a real client joins it late. Used by
// test/real-server.test.ts (Node) and, bundled, by test-browser/run.mjs (Chromium).
//
// Streams are announced in RELAYED sessions, where a publish carries no SDP: nobody subscribes
// to them, so they cost the server a map entry each.

import { createHmac, randomUUID } from "node:crypto";
import { WebSocket } from "ws";
import { PROTOCOL_VERSION, type ClientMessage, type ErrorCode, type RequestId, type ServerFrame } from "../src/api/signaling-types.js";

const b64url = (v: object | Buffer) => Buffer.from(v instanceof Buffer ? v : JSON.stringify(v)).toString("base64url");

function hs256(claims: object, secret: string): string {
  const head = `${b64url({ alg: "HS256", typ: "JWT" })}.${b64url(claims)}`;
  return `${head}.${b64url(createHmac("sha256", secret).update(head).digest())}`;
}

/** A project JWT for the REST API (X-OPENTOK-AUTH), as the OpenTok server SDKs make it. */
export function projectJwt(apiKey: string, secret: string): string {
  const now = Math.floor(Date.now() / 1000);
  return hs256({ iss: apiKey, ist: "project", iat: now, exp: now + 300, jti: randomUUID() }, secret);
}

/** A client token (signaling.md § Handshake), as the OpenTok server SDKs make it. */
export function clientToken(apiKey: string, secret: string, sessionId: string, data?: string): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = {
    iss: apiKey, ist: "project", iat: now, exp: now + 3600, scope: "session.connect", session_id: sessionId,
    role: "publisher", nonce: randomUUID(), create_time: now,
  };
  if (data !== undefined) claims.connection_data = data;
  return hs256(claims, secret);
}

/** Creates a session with the REST API (`params`: OpenTok's form fields) and returns its id. */
export async function createSession(baseUrl: string, apiKey: string, secret: string, params: string): Promise<string> {
  const r = await fetch(`${baseUrl}/session/create`, {
    method: "POST",
    headers: { "X-OPENTOK-AUTH": projectJwt(apiKey, secret), "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
    body: params,
  });
  if (r.status !== 200) throw new Error(`session/create: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { session_id: string }[])[0]!.session_id;
}

/** A refused request, with the server's code. */
export class RequestRefused extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(`${code}: ${message}`);
  }
}

type Ack = Extract<ServerFrame, { type: "ack" }>;
type Request = Exclude<ClientMessage, { type: "connect" | "resume" | "leave" }>;

/** One participant: a signaling socket, nothing else. */
export class Member {
  private nextId = 1;
  private readonly pending = new Map<RequestId, { resolve(a: Ack): void; reject(e: Error): void }>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  /** Streams this member published and has not unpublished. */
  readonly streams: string[] = [];

  private constructor(
    private readonly ws: WebSocket,
    readonly connectionId: string,
  ) {}

  /** Connects with `token`; resolves once the welcome arrived (its snapshot pages are ignored). */
  static connect(signalingUrl: string, token: string, sessionId: string, timeoutMs = 10_000): Promise<Member> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(signalingUrl);
      let member: Member | null = null;
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`no welcome within ${timeoutMs} ms`));
      }, timeoutMs);
      ws.on("open", () => Member.sendOn(ws, { type: "connect", v: PROTOCOL_VERSION, token, session_id: sessionId }));
      ws.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      ws.on("close", (code) => {
        clearTimeout(timer);
        if (!member) reject(new Error(`socket closed before the welcome (code ${code})`));
        else member.stopHeartbeat();
      });
      ws.on("message", (raw) => {
        const msg = JSON.parse(raw.toString()) as ServerFrame;
        if (!member) {
          if (msg.type === "error") return reject(new RequestRefused(msg.code, msg.message));
          if (msg.type !== "welcome") return;
          clearTimeout(timer);
          member = new Member(ws, msg.connection_id);
          // Sockets that stay silent are dropped by the server after heartbeat_timeout_ms.
          member.heartbeat = setInterval(() => member!.send({ type: "ping" }), msg.heartbeat_interval_ms);
          resolve(member);
          return;
        }
        member.onMessage(msg);
      });
    });
  }

  private static sendOn(ws: WebSocket, msg: ClientMessage): void {
    ws.send(JSON.stringify(msg));
  }

  private send(msg: ClientMessage): void {
    if (this.ws.readyState === WebSocket.OPEN) Member.sendOn(this.ws, msg);
  }

  private request(req: Request): Promise<Ack> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.send({ ...req, id });
    });
  }

  private onMessage(msg: ServerFrame): void {
    // Events (connection_created, stream_created, ...) are read and dropped: the socket must be
    // read, or the server would drop it as a slow reader.
    if (msg.type !== "ack" && msg.type !== "error") return;
    const p = msg.id !== null ? this.pending.get(msg.id) : undefined;
    if (!p || msg.id === null) return;
    this.pending.delete(msg.id);
    if (msg.type === "error") p.reject(new RequestRefused(msg.code, msg.message));
    else p.resolve(msg);
  }

  /** Announces a stream (relayed sessions: no SDP); resolves with its id. */
  async publish(name: string): Promise<string> {
    const ack = await this.request({ type: "publish", stream: { name, has_audio: true, has_video: true, video_type: "camera" } });
    if (!("stream_id" in ack)) throw new Error(`publish ack without a stream id: ${JSON.stringify(ack)}`);
    this.streams.push(ack.stream_id);
    return ack.stream_id;
  }

  async unpublish(streamId: string): Promise<void> {
    await this.request({ type: "unpublish", stream_id: streamId });
    this.streams.splice(this.streams.indexOf(streamId), 1);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  /** Leaves the session (`leave`, then the server closes the socket). */
  leave(): void {
    this.stopHeartbeat();
    this.send({ type: "leave" });
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}

export interface CrowdOptions {
  /** Signaling endpoint, ws://host:port/v1/signaling. */
  signalingUrl: string;
  sessionId: string;
  apiKey: string;
  apiSecret: string;
  connections: number;
  /** Streams, published one per connection from the first connection on (≤ connections). */
  streams: number;
}

/** Many members in one relayed session. */
export class Crowd {
  readonly members: Member[] = [];

  private constructor(private readonly opts: CrowdOptions) {}

  /** Connects `connections` members one by one, then publishes `streams` streams. */
  static async gather(opts: CrowdOptions): Promise<Crowd> {
    if (opts.streams > opts.connections) throw new Error("one stream per connection: streams must be <= connections");
    const crowd = new Crowd(opts);
    try {
      for (let i = 0; i < opts.connections; i++) await crowd.add();
      // In batches: each publish makes the server tell every member, so keep a bound in flight.
      for (let i = 0; i < opts.streams; i += 20) {
        await Promise.all(crowd.members.slice(i, Math.min(i + 20, opts.streams)).map((m, k) => m.publish(`crowd-${i + k}`)));
      }
    } catch (e) {
      crowd.leave();
      throw e;
    }
    return crowd;
  }

  /** Connects one more member. */
  async add(): Promise<Member> {
    const n = this.members.length;
    const token = clientToken(this.opts.apiKey, this.opts.apiSecret, this.opts.sessionId, `crowd-${n}`);
    const m = await Member.connect(this.opts.signalingUrl, token, this.opts.sessionId);
    this.members.push(m);
    return m;
  }

  get connectionIds(): string[] {
    return this.members.map((m) => m.connectionId);
  }

  get streamIds(): string[] {
    return this.members.flatMap((m) => m.streams);
  }

  leave(): void {
    for (const m of this.members) m.leave();
  }
}
