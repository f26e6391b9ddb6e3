// A loopback stand-in for `umbra serve`'s signaling endpoint (docs/signaling.md), for testing the
// client's side of the protocol: handshake, refusals, requests, events, heartbeat, resume.
// The server's real behaviour is tested by crates/umbra-server/tests/signaling.rs.

import { WebSocketServer, type WebSocket } from "ws";
import type { AddressInfo } from "node:net";

export interface FakeOptions {
  e2ee: boolean;
  cipherSuite?: number;
  mediaMode?: "routed" | "relayed";
  sessionId: string;
  resumeWindowMs?: number;
  heartbeatIntervalMs?: number;
  /** A signal event sent right after the welcome (it arrives while the client completes its connect). */
  greeting?: string;
}

export interface FakeClient {
  ws: WebSocket;
  connectionId: string;
  seq: number;
  sent: unknown[];
  received: any[];
}

export class FakeSignalingServer {
  private wss!: WebSocketServer;
  readonly clients: FakeClient[] = [];
  private n = 0;
  /** Requests by type the server answers with an error: type -> [code, message]. */
  readonly refuse = new Map<string, [string, string]>();

  constructor(readonly opts: FakeOptions) {}

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
  event(c: FakeClient, ev: Record<string, unknown>): void {
    const msg = { ...ev, seq: ++c.seq };
    c.sent.push(msg);
    if (c.ws.readyState === c.ws.OPEN) c.ws.send(JSON.stringify(msg));
  }

  private onSocket(ws: WebSocket): void {
    let client: FakeClient | null = null;
    ws.on("message", (raw) => {
      const msg = JSON.parse(raw.toString());
      if (!client) {
        if (msg.type === "connect") {
          if (msg.token === "forged") {
            ws.send(JSON.stringify({ type: "error", id: null, code: "token_forged", message: "the token's signature does not verify" }));
            ws.close(4003);
            return;
          }
          if (msg.session_id !== this.opts.sessionId) {
            ws.send(JSON.stringify({ type: "error", id: null, code: "token_wrong_session", message: "the token is for another session" }));
            ws.close(4003);
            return;
          }
          client = { ws, connectionId: `conn-${++this.n}`, seq: 0, sent: [], received: [] };
          const others = this.clients.map((c) => ({ connection_id: c.connectionId, data: "other", created_at: 1 }));
          this.clients.push(client);
          ws.send(
            JSON.stringify({
              type: "welcome", v: 1, session_id: this.opts.sessionId, connection_id: client.connectionId, resume_token: "rt",
              role: "publisher", connection_data: "me", media_mode: this.opts.mediaMode ?? "routed", archive_mode: "manual",
              e2ee: this.opts.e2ee, cipher_suite: this.opts.e2ee ? (this.opts.cipherSuite ?? 6) : null,
              heartbeat_interval_ms: this.opts.heartbeatIntervalMs ?? 10000, heartbeat_timeout_ms: 30000,
              resume_window_ms: this.opts.resumeWindowMs ?? 20000, connections: others,
              streams: [{ stream_id: "s-existing", connection_id: "conn-x", name: "cam", has_audio: true, has_video: true, video_type: "camera", video_dimensions: null, e2ee: this.opts.e2ee, cipher_suite: this.opts.e2ee ? 6 : null, created_at: 1, layout_class_list: [] }],
            }),
          );
          for (const c of this.clients) if (c !== client) this.event(c, { type: "connection_created", connection: { connection_id: client.connectionId, data: "me", created_at: 2 } });
          if (this.opts.greeting) this.event(client, { type: "signal", from: null, signal_type: "greeting", data: this.opts.greeting });
          return;
        }
        if (msg.type === "resume") {
          const c = this.clients.find((x) => x.connectionId === msg.connection_id);
          if (!c || msg.resume_token !== "rt") {
            ws.send(JSON.stringify({ type: "error", id: null, code: "resume_unknown_connection", message: "no such connection" }));
            ws.close(4003);
            return;
          }
          c.ws = ws;
          client = c;
          ws.send(JSON.stringify({ type: "resumed", session_id: this.opts.sessionId, connection_id: c.connectionId, last_seq: c.seq }));
          for (const ev of c.sent as { seq: number }[]) if (ev.seq > msg.last_seq) ws.send(JSON.stringify(ev));
          return;
        }
        ws.send(JSON.stringify({ type: "error", id: null, code: "not_connected", message: "connect first" }));
        ws.close(4003);
        return;
      }
      client.received.push(msg);
      const refusal = this.refuse.get(msg.type);
      if (refusal) {
        ws.send(JSON.stringify({ type: "error", id: msg.id, code: refusal[0], message: refusal[1] }));
        return;
      }
      switch (msg.type) {
        case "ping":
          ws.send(JSON.stringify({ type: "pong", id: msg.id }));
          return;
        case "leave":
          ws.close(1000);
          this.clients.splice(this.clients.indexOf(client), 1);
          for (const c of this.clients) this.event(c, { type: "connection_destroyed", connection: { connection_id: client.connectionId, data: "me", created_at: 2 }, reason: "clientDisconnected" });
          return;
        case "signal": {
          ws.send(JSON.stringify({ type: "ack", id: msg.id }));
          const to = msg.to ? this.clients.filter((c) => c.connectionId === msg.to) : this.clients;
          for (const c of to) this.event(c, { type: "signal", from: client.connectionId, signal_type: msg.signal_type, data: msg.data });
          return;
        }
        default:
          ws.send(JSON.stringify({ type: "error", id: msg.id, code: "bad_request", message: `fake server does not handle ${msg.type}` }));
      }
    });
  }
}
