// A loopback stand-in for `umbra serve`'s signaling endpoint (docs/signaling.md), for testing the
// client's side of the protocol: handshake (welcome and snapshot pages), refusals, requests,
// events, heartbeat, resume. Every message it sends or reads has the generated protocol types.
// The server's real behaviour is tested by crates/umbra-server/tests/signaling.rs.

import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";
import {
  SNAPSHOT_PAGE,
  type ClientMessage,
  type ConnectionInfo,
  type ErrorCode,
  type RequestId,
  type ServerEvent,
  type ServerMessage,
  type StreamInfo,
} from "../src/api/signaling-types.js";

export interface FakeOptions {
  e2ee: boolean;
  cipherSuite?: number;
  mediaMode?: "routed" | "relayed";
  sessionId: string;
  resumeWindowMs?: number;
  heartbeatIntervalMs?: number;
  /** A signal event sent right after the welcome (it arrives while the client completes its connect). */
  greeting?: string;
  /** Further participants and streams present before anyone connects (none by default). */
  population?: { connections: number; streams: number };
  /** Connections and streams per welcome/snapshot page (the server's SNAPSHOT_PAGE by default). */
  pageSize?: number;
}

export interface FakeClient {
  ws: WebSocket;
  connectionId: string;
  seq: number;
  sent: (ServerEvent & { seq: number })[];
  received: ClientMessage[];
  /** The welcome and snapshot pages this client got. */
  pages: ServerMessage[];
}

export function wireStream(streamId: string, connectionId: string, e2ee = false): StreamInfo {
  return {
    stream_id: streamId, connection_id: connectionId, name: "cam", has_audio: true, has_video: true, video_type: "camera",
    video_dimensions: null, e2ee, cipher_suite: e2ee ? 6 : null, created_at: 1, layout_class_list: [],
  };
}

export class FakeSignalingServer {
  private wss!: WebSocketServer;
  readonly clients: FakeClient[] = [];
  private n = 0;
  private nextStream = 0;
  /** Requests by type the server answers with an error: type -> [code, message]. */
  readonly refuse = new Map<string, [ErrorCode, string]>();
  /** Participants without a socket (options.population), and every stream in the session. */
  private readonly absent: ConnectionInfo[] = [];
  readonly streams: StreamInfo[] = [];

  constructor(readonly opts: FakeOptions) {
    const pop = opts.population ?? { connections: 0, streams: 0 };
    for (let i = 0; i < pop.connections; i++) this.absent.push({ connection_id: `pop-${i}`, data: `population ${i}`, created_at: 1 });
    for (let i = 0; i < pop.streams; i++) this.streams.push(wireStream(`pop-stream-${i}`, `pop-${i % Math.max(1, pop.connections)}`, opts.e2ee));
    // The stream every session of this fake has, from a connection nobody is told about.
    this.streams.push(wireStream("s-existing", "conn-x", opts.e2ee));
  }

  async start(): Promise<string> {
    this.wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/signaling" });
    await new Promise<void>((r) => this.wss.once("listening", () => r()));
    this.wss.on("connection", (ws) => this.onSocket(ws));
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  async stop(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  /** Sends an event (with the next seq) to a client. */
  event(c: FakeClient, ev: ServerEvent): void {
    const msg = { ...ev, seq: ++c.seq };
    c.sent.push(msg);
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  }

  private broadcast(ev: ServerEvent): void {
    for (const c of this.clients) this.event(c, ev);
  }

  private static send(ws: WebSocket, msg: ServerMessage): void {
    ws.send(JSON.stringify(msg));
  }

  private refuseHandshake(ws: WebSocket, code: ErrorCode, message: string): void {
    FakeSignalingServer.send(ws, { type: "error", id: null, code, message });
    ws.close(4003);
  }

  /** The welcome and the snapshot pages after it, SNAPSHOT_PAGE of each kind per page, as the server pages. */
  private welcome(client: FakeClient): ServerMessage[] {
    const page = this.opts.pageSize ?? SNAPSHOT_PAGE;
    const others = [...this.absent, ...this.clients.filter((c) => c !== client).map((c) => ({ connection_id: c.connectionId, data: "other", created_at: 1 }))];
    const pages = Math.max(1, Math.ceil(others.length / page), Math.ceil(this.streams.length / page));
    const out: ServerMessage[] = [];
    for (let i = 0; i < pages; i++) {
      const connections = others.slice(i * page, (i + 1) * page);
      const streams = this.streams.slice(i * page, (i + 1) * page);
      const complete = i === pages - 1;
      if (i > 0) {
        out.push({ type: "snapshot", connections, streams, complete });
        continue;
      }
      out.push({
        type: "welcome", v: 1, session_id: this.opts.sessionId, connection_id: client.connectionId, resume_token: "rt",
        role: "publisher", connection_data: "me", media_mode: this.opts.mediaMode ?? "routed", archive_mode: "manual",
        e2ee: this.opts.e2ee, cipher_suite: this.opts.e2ee ? (this.opts.cipherSuite ?? 6) : null,
        heartbeat_interval_ms: this.opts.heartbeatIntervalMs ?? 10000, heartbeat_timeout_ms: 30000,
        resume_window_ms: this.opts.resumeWindowMs ?? 20000, connections, streams, complete,
      });
    }
    return out;
  }

  private onSocket(ws: WebSocket): void {
    let client: FakeClient | null = null;
    ws.on("message", (raw) => {
      const msg = JSON.parse(raw.toString()) as ClientMessage;
      if (!client) {
        if (msg.type === "connect") {
          if (msg.token === "forged") return this.refuseHandshake(ws, "token_forged", "the token's signature does not verify");
          if (msg.session_id !== this.opts.sessionId) return this.refuseHandshake(ws, "token_wrong_session", "the token is for another session");
          client = { ws, connectionId: `conn-${++this.n}`, seq: 0, sent: [], received: [], pages: [] };
          const pages = this.welcome(client);
          this.clients.push(client);
          for (const p of pages) {
            client.pages.push(p);
            FakeSignalingServer.send(ws, p);
          }
          for (const c of this.clients) if (c !== client) this.event(c, { type: "connection_created", connection: { connection_id: client.connectionId, data: "me", created_at: 2 } });
          if (this.opts.greeting) this.event(client, { type: "signal", from: null, signal_type: "greeting", data: this.opts.greeting });
          return;
        }
        if (msg.type === "resume") {
          const c = this.clients.find((x) => x.connectionId === msg.connection_id);
          if (!c || msg.resume_token !== "rt") return this.refuseHandshake(ws, "resume_unknown_connection", "no such connection");
          c.ws = ws;
          client = c;
          FakeSignalingServer.send(ws, { type: "resumed", session_id: this.opts.sessionId, connection_id: c.connectionId, last_seq: c.seq });
          for (const ev of c.sent) if (ev.seq > msg.last_seq) ws.send(JSON.stringify(ev));
          return;
        }
        return this.refuseHandshake(ws, "not_connected", "connect first");
      }
      const me = client;
      me.received.push(msg);
      const id: RequestId | null = "id" in msg ? (msg.id ?? null) : null;
      const refusal = this.refuse.get(msg.type);
      if (refusal) return FakeSignalingServer.send(ws, { type: "error", id, code: refusal[0], message: refusal[1] });
      switch (msg.type) {
        case "ping":
          return FakeSignalingServer.send(ws, { type: "pong", id });
        case "leave": {
          ws.close(1000);
          this.clients.splice(this.clients.indexOf(me), 1);
          this.broadcast({ type: "connection_destroyed", connection: { connection_id: me.connectionId, data: "me", created_at: 2 }, reason: "clientDisconnected" });
          return;
        }
        case "signal": {
          FakeSignalingServer.send(ws, { type: "ack", id });
          const to = msg.to ? this.clients.filter((c) => c.connectionId === msg.to) : this.clients;
          for (const c of to) this.event(c, { type: "signal", from: me.connectionId, signal_type: msg.signal_type ?? "", data: msg.data });
          return;
        }
        case "publish": {
          // Relayed semantics (no SDP answer): the stream is announced to everyone.
          const stream: StreamInfo = { ...wireStream(`fake-stream-${++this.nextStream}`, me.connectionId, this.opts.e2ee), name: msg.stream.name ?? "" };
          this.streams.push(stream);
          FakeSignalingServer.send(ws, { type: "ack", id, stream_id: stream.stream_id, sdp_answer: null });
          this.broadcast({ type: "stream_created", stream });
          return;
        }
        case "set_stream_property": {
          const s = this.streams.find((x) => x.stream_id === msg.stream_id && x.connection_id === me.connectionId);
          if (!s) return FakeSignalingServer.send(ws, { type: "error", id, code: "unknown_stream", message: "no such stream of yours" });
          FakeSignalingServer.send(ws, { type: "ack", id });
          switch (msg.property) {
            case "has_audio":
              this.broadcast({ type: "stream_property_changed", stream_id: s.stream_id, property: "has_audio", old_value: s.has_audio, new_value: msg.value });
              s.has_audio = msg.value;
              return;
            case "has_video":
              this.broadcast({ type: "stream_property_changed", stream_id: s.stream_id, property: "has_video", old_value: s.has_video, new_value: msg.value });
              s.has_video = msg.value;
              return;
            case "video_dimensions":
              this.broadcast({ type: "stream_property_changed", stream_id: s.stream_id, property: "video_dimensions", old_value: s.video_dimensions, new_value: msg.value });
              s.video_dimensions = msg.value;
              return;
          }
          return;
        }
        default:
          FakeSignalingServer.send(ws, { type: "error", id, code: "bad_request", message: `fake server does not handle ${msg.type}` });
      }
    });
  }
}
