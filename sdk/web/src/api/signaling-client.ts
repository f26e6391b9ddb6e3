// The client end of the signaling WebSocket (docs/signaling.md): handshake, requests answered by
// ack/error, events with sequence numbers, heartbeat, and resuming a dropped socket within the
// server's resume window. Knows nothing of sessions, publishers or E2EE.

import { fromServer, OTError } from "./errors.js";
import { SIGNALING_VERSION, type ServerEvent, type Welcome } from "./signaling-types.js";

/** The subset of the browser WebSocket the client uses (also what the `ws` package provides). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (ev: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;
const CLOSE_NORMAL = 1000;
const CLOSE_FORCED = 4001;
const CLOSE_RESUMED_ELSEWHERE = 4002;
const CLOSE_HANDSHAKE_REFUSED = 4003;
/** How long to wait for the WebSocket to open and the server to answer the handshake. */
const HANDSHAKE_TIMEOUT_MS = 15_000;

export type DisconnectReason = "clientDisconnected" | "networkDisconnected" | "forceDisconnected";

export interface SignalingCallbacks {
  onEvent(event: ServerEvent): void;
  /** The connection is over for good (not called for a drop that is resumed). */
  onDisconnected(reason: DisconnectReason, detail: string): void;
  /** The socket dropped and the client is trying to resume (OpenTok's sessionReconnecting). */
  onReconnecting?(): void;
  onReconnected?(): void;
}

interface Pending {
  resolve(ack: Record<string, unknown>): void;
  reject(e: OTError): void;
}

export class SignalingClient {
  private ws: WebSocketLike | null = null;
  private welcome: Welcome | null = null;
  private lastSeq = 0;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private lastReceived = 0;
  private closed = false;
  private resuming = false;

  constructor(
    private readonly url: string,
    private readonly WS: WebSocketConstructor,
    private readonly callbacks: SignalingCallbacks,
    private readonly now: () => number = () => Date.now(),
  ) {}

  get connectionId(): string | null {
    return this.welcome?.connection_id ?? null;
  }

  get isConnected(): boolean {
    return !this.closed && this.welcome !== null;
  }

  /** Opens the socket and performs the `connect` handshake. Rejects with an OTError. */
  async connect(token: string, sessionId: string): Promise<Welcome> {
    const reply = await this.handshake({ type: "connect", v: SIGNALING_VERSION, token, session_id: sessionId });
    if (reply.type !== "welcome") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `expected welcome, got ${String(reply.type)}`);
    this.welcome = reply as unknown as Welcome;
    this.lastSeq = 0;
    this.startHeartbeat();
    return this.welcome;
  }

  /** Sends a request and resolves with the server's `ack`, or rejects with its `error`. */
  request(type: string, fields: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (!this.isConnected || !this.ws || this.ws.readyState !== OPEN) {
      return Promise.reject(new OTError("OT_NOT_CONNECTED", `cannot send "${type}": not connected to the session`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.ws!.send(JSON.stringify({ ...fields, type, id }));
    });
  }

  /** Leaves the session (`leave`, close 1000). */
  disconnect(): void {
    if (this.closed) return;
    if (this.ws && this.ws.readyState === OPEN) {
      try {
        this.ws.send(JSON.stringify({ type: "leave" }));
      } catch {
        // the socket is going away anyway
      }
      this.ws.close(CLOSE_NORMAL, "client left");
    }
    this.finish("clientDisconnected", "the client disconnected");
  }

  /** Opens a socket, sends `first`, resolves with the first message (welcome/resumed) or rejects. */
  private handshake(first: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let ws: WebSocketLike;
      try {
        ws = new this.WS(this.url);
      } catch (e) {
        reject(new OTError("OT_CONNECT_FAILED", `cannot open the signaling WebSocket ${this.url}: ${e instanceof Error ? e.message : e}`));
        return;
      }
      const fail = (e: OTError) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        try {
          ws.close();
        } catch {
          // already closed
        }
        reject(e);
      };
      const timer = setTimeout(
        () => fail(new OTError("OT_TIMEOUT", `the server at ${this.url} did not answer the handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)),
        HANDSHAKE_TIMEOUT_MS,
      );
      ws.addEventListener("open", () => ws.send(JSON.stringify(first)));
      ws.addEventListener("message", (ev: { data: unknown }) => {
        if (!settled) {
          const msg = parse(ev.data);
          if (!msg) return fail(new OTError("OT_UNEXPECTED_SERVER_RESPONSE", "the server sent a message that is not a JSON object"));
          if (msg.type === "error") return fail(fromServer(String(msg.code), String(msg.message)));
          settled = true;
          clearTimeout(timer);
          this.ws = ws;
          this.lastReceived = this.now();
          resolve(msg);
          return;
        }
        if (this.ws === ws) this.onMessage(ev.data);
      });
      ws.addEventListener("close", (ev: { code: number; reason?: string }) => {
        if (!settled) {
          return fail(new OTError("OT_CONNECT_FAILED", `the signaling WebSocket ${this.url} closed during the handshake (code ${ev.code})`));
        }
        if (this.ws === ws) this.onSocketClosed(ev.code, ev.reason ?? "");
      });
      ws.addEventListener("error", () => {
        // A close event follows with the code; before the handshake, report it as a failure.
        fail(new OTError("OT_CONNECT_FAILED", `cannot reach the signaling server at ${this.url}`));
      });
    });
  }

  private onMessage(data: unknown): void {
    this.lastReceived = this.now();
    const msg = parse(data);
    if (!msg) return;
    if (msg.type === "ack" || msg.type === "pong" || (msg.type === "error" && msg.id !== null && msg.id !== undefined)) {
      const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (msg.type === "error") p.reject(fromServer(String(msg.code), String(msg.message)));
      else p.resolve(msg);
      return;
    }
    if (typeof msg.seq === "number") {
      if (msg.seq <= this.lastSeq) return; // already processed before a resume
      this.lastSeq = msg.seq;
      this.callbacks.onEvent(msg as ServerEvent);
    }
  }

  private onSocketClosed(code: number, reason: string): void {
    this.ws = null;
    this.stopHeartbeat();
    if (this.closed) return;
    switch (code) {
      case CLOSE_NORMAL:
        return this.finish("clientDisconnected", reason || "the server closed the connection");
      case CLOSE_FORCED:
        return this.finish("forceDisconnected", "a moderator removed this connection from the session");
      case CLOSE_RESUMED_ELSEWHERE:
        return this.finish("networkDisconnected", "this connection was resumed on another socket");
      case CLOSE_HANDSHAKE_REFUSED:
        return this.finish("networkDisconnected", reason || "the server refused the connection");
      default:
        void this.resume();
    }
  }

  /** Re-opens the socket with `resume` until the server's resume window has passed. */
  private async resume(): Promise<void> {
    if (this.resuming || !this.welcome) return;
    this.resuming = true;
    this.failPending(new OTError("OT_NOT_CONNECTED", "the connection to the session dropped before the server answered"));
    this.callbacks.onReconnecting?.();
    const deadline = this.now() + this.welcome.resume_window_ms;
    let delay = 250;
    while (!this.closed && this.now() < deadline) {
      try {
        const reply = await this.handshake({
          type: "resume",
          v: SIGNALING_VERSION,
          session_id: this.welcome.session_id,
          connection_id: this.welcome.connection_id,
          resume_token: this.welcome.resume_token,
          last_seq: this.lastSeq,
        });
        if (reply.type !== "resumed") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `expected resumed, got ${String(reply.type)}`);
        this.resuming = false;
        this.startHeartbeat();
        this.callbacks.onReconnected?.();
        return;
      } catch (e) {
        // The server says the connection cannot be resumed: no point in trying again.
        if (e instanceof OTError && e.serverCode?.startsWith("resume_")) break;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 4000);
    }
    this.resuming = false;
    this.finish("networkDisconnected", "the connection to the session was lost and could not be resumed");
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const w = this.welcome!;
    this.heartbeat = setInterval(() => {
      if (!this.ws) return;
      if (this.now() - this.lastReceived > w.heartbeat_timeout_ms) {
        // Nothing for too long: treat the socket as dropped (and resume).
        const ws = this.ws;
        this.ws = null;
        try {
          ws.close();
        } catch {
          // ignore
        }
        this.stopHeartbeat();
        void this.resume();
        return;
      }
      this.ws.send(JSON.stringify({ type: "ping", id: this.nextId++ }));
    }, w.heartbeat_interval_ms);
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) clearInterval(this.heartbeat);
    this.heartbeat = null;
  }

  private failPending(e: OTError): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  private finish(reason: DisconnectReason, detail: string): void {
    if (this.closed) return;
    this.closed = true;
    this.stopHeartbeat();
    this.failPending(new OTError("OT_NOT_CONNECTED", `disconnected from the session: ${detail}`));
    this.callbacks.onDisconnected(reason, detail);
  }
}

function parse(data: unknown): Record<string, unknown> | null {
  if (typeof data !== "string") return null;
  try {
    const v: unknown = JSON.parse(data);
    return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
