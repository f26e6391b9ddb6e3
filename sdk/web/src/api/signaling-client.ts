// The client end of the signaling WebSocket (docs/signaling.md): handshake, requests answered by
// ack/error, events with sequence numbers, heartbeat, and resuming a dropped socket within the
// server's resume window. Knows nothing of sessions, publishers or E2EE.

import { fromServer, OTError } from "./errors.js";
import {
  CloseCode,
  ignoreUnknown,
  PROTOCOL_VERSION,
  type AckFor,
  type ClientMessage,
  type HandshakeMessage,
  type Joined,
  type Request,
  type ServerEvent,
  type ServerFrame,
  type ServerMessageOf,
} from "./signaling-types.js";

/** The subset of the browser WebSocket the client uses (also what the `ws` package provides). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (ev: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

const OPEN = 1;
/** The WebSocket's own "normal closure" (the client left); the protocol's codes are CloseCode. */
const CLOSE_NORMAL = 1000;
/** How long to wait for the WebSocket to open and the server to send the whole handshake
 * (the welcome and every snapshot page). */
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

type Ack = ServerMessageOf<"ack">;
type Resumed = ServerMessageOf<"resumed">;

interface Pending {
  resolve(ack: Ack): void;
  reject(e: OTError): void;
}

export class SignalingClient {
  private ws: WebSocketLike | null = null;
  private joined: Joined | null = null;
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
    return this.joined?.connection_id ?? null;
  }

  get isConnected(): boolean {
    return !this.closed && this.joined !== null;
  }

  /**
   * Opens the socket and performs the `connect` handshake. Resolves once the session's whole
   * state has arrived: the welcome and, when it says `complete: false`, every `snapshot` page
   * after it (merged into one welcome). Rejects with an OTError.
   */
  async connect(token: string, sessionId: string): Promise<Joined> {
    const reply = await this.handshake({ type: "connect", v: PROTOCOL_VERSION, token, session_id: sessionId });
    if (reply.type !== "welcome") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `expected welcome, got ${reply.type}`);
    this.joined = reply;
    this.lastSeq = 0;
    this.startHeartbeat();
    return reply;
  }

  /** Sends a request and resolves with the server's `ack`, or rejects with its `error`. */
  request<R extends Request>(req: R): Promise<AckFor<R["type"]>> {
    if (!this.isConnected || !this.ws || this.ws.readyState !== OPEN) {
      return Promise.reject(new OTError("OT_NOT_CONNECTED", `cannot send "${req.type}": not connected to the session`));
    }
    const id = this.nextId++;
    const msg: ClientMessage = { ...(req as Request), id };
    return new Promise((resolve, reject) => {
      // The server answers each request with the ack its type calls for (the crate types both).
      this.pending.set(id, { resolve: (ack) => resolve(ack as unknown as AckFor<R["type"]>), reject });
      this.send(msg);
    });
  }

  /** Leaves the session (`leave`, close 1000). */
  disconnect(): void {
    if (this.closed) return;
    if (this.ws && this.ws.readyState === OPEN) {
      try {
        this.send({ type: "leave" });
      } catch {
        // the socket is going away anyway
      }
      this.ws.close(CLOSE_NORMAL, "client left");
    }
    this.finish("clientDisconnected", "the client disconnected");
  }

  private send(msg: ClientMessage, ws: WebSocketLike | null = this.ws): void {
    ws?.send(JSON.stringify(msg));
  }

  /**
   * Opens a socket, sends `first`, and resolves with the server's answer: `resumed`, or the
   * `welcome` merged with the `snapshot` pages that follow it until one is complete. Rejects on
   * an `error`, a close or the timeout.
   */
  private handshake(first: HandshakeMessage): Promise<Joined | Resumed> {
    return new Promise((resolve, reject) => {
      let settled = false;
      let ws: WebSocketLike;
      try {
        ws = new this.WS(this.url);
      } catch (e) {
        reject(new OTError("OT_CONNECT_FAILED", `cannot open the signaling WebSocket ${this.url}: ${e instanceof Error ? e.message : e}`));
        return;
      }
      // The welcome while snapshot pages are still to come, and anything the server sent
      // meanwhile (the protocol puts every page before any event; this keeps order if not).
      let partial: Joined | null = null;
      const held: ServerFrame[] = [];
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
      const succeed = (reply: Joined | Resumed) => {
        settled = true;
        clearTimeout(timer);
        this.ws = ws;
        resolve(reply);
        // Now that the state is whole, in their order and before anything that follows them.
        for (const m of held.splice(0)) this.onFrame(m);
      };
      const timer = setTimeout(
        () => fail(new OTError("OT_TIMEOUT", `the server at ${this.url} did not answer the handshake within ${HANDSHAKE_TIMEOUT_MS / 1000} s`)),
        HANDSHAKE_TIMEOUT_MS,
      );
      ws.addEventListener("open", () => this.send(first, ws));
      ws.addEventListener("message", (ev: { data: unknown }) => {
        if (settled) {
          if (this.ws === ws) this.onMessage(ev.data);
          return;
        }
        this.lastReceived = this.now();
        const msg = parse(ev.data);
        if (!msg) return fail(new OTError("OT_UNEXPECTED_SERVER_RESPONSE", "the server sent a message that is not a JSON object with a type"));
        if (msg.type === "error") return fail(fromServer(msg.code, msg.message));
        if (!partial) {
          if (msg.type === "welcome") {
            const page: Joined = { ...msg, complete: true };
            if (msg.complete) return succeed(page);
            partial = page;
            return;
          }
          if (msg.type === "resumed") return succeed(msg);
          return fail(new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `expected welcome or resumed, got ${msg.type}`));
        }
        if (msg.type !== "snapshot") {
          held.push(msg);
          return;
        }
        partial.connections.push(...msg.connections);
        partial.streams.push(...msg.streams);
        if (msg.complete) succeed(partial);
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
    if (msg) this.onFrame(msg);
  }

  private onFrame(msg: ServerFrame): void {
    if (typeof msg.seq === "number") {
      if (msg.seq <= this.lastSeq) return; // already processed before a resume
      this.lastSeq = msg.seq;
    }
    switch (msg.type) {
      case "ack":
      case "pong":
      case "error": {
        // A reply without an id (a refused handshake) cannot arrive once connected.
        const p = typeof msg.id === "number" ? this.pending.get(msg.id) : undefined;
        if (!p || typeof msg.id !== "number") return;
        this.pending.delete(msg.id);
        if (msg.type === "error") p.reject(fromServer(msg.code, msg.message));
        else if (msg.type === "ack") p.resolve(msg);
        else p.resolve({ type: "ack", id: msg.id });
        return;
      }
      case "welcome":
      case "snapshot":
      case "resumed":
        // Handshake messages belong to handshake(); one on an established socket is a server
        // bug, and the state it would describe is already known.
        return;
      case "connection_created":
      case "connection_destroyed":
      case "stream_created":
      case "stream_destroyed":
      case "stream_property_changed":
      case "signal":
      case "subscribe_offer":
      case "answer":
      case "ice":
      case "subscription_ended":
      case "mute_forced":
      case "media_connected":
      case "media_failed":
      case "media_closed":
      case "media_restart":
      case "layers_wanted":
      case "video_layer_changed":
      case "active_speaker_changed":
      case "forced_disconnect":
        this.callbacks.onEvent(msg);
        return;
      default:
        ignoreUnknown(msg);
    }
  }

  private onSocketClosed(code: number, reason: string): void {
    this.ws = null;
    this.stopHeartbeat();
    if (this.closed) return;
    switch (code) {
      case CLOSE_NORMAL:
        return this.finish("clientDisconnected", reason || "the server closed the connection");
      case CloseCode.FORCED:
        return this.finish("forceDisconnected", "a moderator removed this connection from the session");
      case CloseCode.REPLACED:
        return this.finish("networkDisconnected", "this connection was resumed on another socket");
      case CloseCode.HANDSHAKE_REFUSED:
        return this.finish("networkDisconnected", reason || "the server refused the connection");
      default:
        void this.resume();
    }
  }

  /** Re-opens the socket with `resume` until the server's resume window has passed. */
  private async resume(): Promise<void> {
    const joined = this.joined;
    if (this.resuming || !joined) return;
    this.resuming = true;
    this.failPending(new OTError("OT_NOT_CONNECTED", "the connection to the session dropped before the server answered"));
    this.callbacks.onReconnecting?.();
    const deadline = this.now() + joined.resume_window_ms;
    let delay = 250;
    while (!this.closed && this.now() < deadline) {
      try {
        const reply = await this.handshake({
          type: "resume",
          v: PROTOCOL_VERSION,
          session_id: joined.session_id,
          connection_id: joined.connection_id,
          resume_token: joined.resume_token,
          last_seq: this.lastSeq,
        });
        if (reply.type !== "resumed") throw new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `expected resumed, got ${reply.type}`);
        this.resuming = false;
        this.startHeartbeat();
        this.callbacks.onReconnected?.();
        return;
      } catch (e) {
        // The server refused the resume (resume_gap, resume_unknown_connection, ...): trying
        // again cannot help. Only a handshake it did not answer in time is worth repeating.
        if (e instanceof OTError && (e.serverCode !== undefined ? e.serverCode !== "handshake_timeout" : e.name === "OT_UNEXPECTED_SERVER_RESPONSE")) break;
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 4000);
    }
    this.resuming = false;
    this.finish("networkDisconnected", "the connection to the session was lost and could not be resumed");
  }

  private startHeartbeat(): void {
    this.stopHeartbeat();
    const w = this.joined!;
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
      this.send({ type: "ping", id: this.nextId++ });
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

/**
 * A text frame as a server message. Only the envelope is checked (a JSON object with a string
 * `type`); the fields are the server's, typed by the same crate this SDK's types come from.
 */
function parse(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  try {
    const v: unknown = JSON.parse(data);
    if (typeof v !== "object" || v === null || Array.isArray(v) || typeof (v as { type?: unknown }).type !== "string") return null;
    return v as ServerFrame;
  } catch {
    return null;
  }
}
