// The signaling client's side of the protocol, against scripted servers: the welcome merged with
// its snapshot pages, events kept in order around them, message types from a newer server, and
// the mapping of every server error code to a public error name.

import { test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { WebSocket, WebSocketServer } from "ws";
import { fromServer, nameForServerCode } from "../src/api/errors.js";
import { SignalingClient, type WebSocketConstructor } from "../src/api/signaling-client.js";
import { ERROR_CODES, type ClientMessage, type ServerEvent, type ServerFrame, type StreamInfo } from "../src/api/signaling-types.js";
import { FakeSignalingServer, wireStream } from "./fake-signaling-server.js";

const WS = WebSocket as unknown as WebSocketConstructor;

/** A pause in a script. */
const PAUSE = { pauseMs: 100 } as const;

/**
 * A server that answers the first message with `script`: frames sent in order, with a pause of
 * 100 ms at each PAUSE; then it stays open.
 */
async function scripted(script: (first: ClientMessage) => (ServerFrame | { type: string; seq?: number } | typeof PAUSE)[]): Promise<{ url: string; close(): Promise<void> }> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/v1/signaling" });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  wss.on("connection", (ws) => ws.once("message", async (raw) => {
    for (const m of script(JSON.parse(raw.toString()) as ClientMessage)) {
      if ("pauseMs" in m) await new Promise((r) => setTimeout(r, m.pauseMs));
      else ws.send(JSON.stringify(m));
    }
  }));
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/signaling`,
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

function welcome(connections: number, streams: StreamInfo[], complete: boolean): ServerFrame {
  return {
    type: "welcome", v: 1, session_id: "s", connection_id: "me", resume_token: "rt", role: "publisher", connection_data: null,
    media_mode: "relayed", archive_mode: "manual", e2ee: false, cipher_suite: null, heartbeat_interval_ms: 10_000,
    heartbeat_timeout_ms: 30_000, resume_window_ms: 20_000,
    connections: Array.from({ length: connections }, (_, i) => ({ connection_id: `w-${i}`, data: null, created_at: 1 })), streams, complete,
  };
}

test("connect resolves with the welcome and every snapshot page merged, complete", { timeout: 30_000 }, async () => {
  const server = new FakeSignalingServer({ e2ee: false, sessionId: "s1", population: { connections: 205, streams: 99 }, pageSize: 50 });
  const url = await server.start();
  try {
    const events: ServerEvent[] = [];
    const client = new SignalingClient(url.replace("http", "ws") + "/v1/signaling", WS, { onEvent: (e) => events.push(e), onDisconnected: () => undefined });
    const joined = await client.connect("t", "s1");
    assert.equal(server.clients[0]!.pages.length, 5, "205 connections in pages of 50");
    assert.equal(joined.complete, true);
    assert.equal(joined.connections.length, 205);
    assert.equal(new Set(joined.connections.map((c) => c.connection_id)).size, 205);
    assert.deepEqual(joined.streams.map((s) => s.stream_id), [...Array.from({ length: 99 }, (_, i) => `pop-stream-${i}`), "s-existing"]);
    assert.equal(events.length, 0, "pages are not events");
    client.disconnect();
  } finally {
    await server.stop();
  }
});

test("an event sent between snapshot pages is held until the state is whole, and nothing is lost", { timeout: 30_000 }, async () => {
  // Out of the protocol's order (it puts every page first): the client must still not deliver an
  // event about a session it does not fully know yet.
  const server = await scripted(() => [
    welcome(2, [wireStream("a", "w-0")], false),
    { type: "signal", seq: 1, from: null, signal_type: "early", data: "between pages" },
    PAUSE,
    { type: "snapshot", connections: [{ connection_id: "p-0", data: null, created_at: 1 }], streams: [wireStream("b", "p-0")], complete: true },
    { type: "signal", seq: 2, from: null, signal_type: "late", data: "after the pages" },
  ]);
  try {
    const log: string[] = [];
    const t0 = Date.now();
    const client = new SignalingClient(server.url, WS, {
      onEvent: (e) => log.push(`${e.type === "signal" ? e.signal_type : e.type} ${Date.now() - t0 >= 90 ? "after" : "before"} the last page`),
      onDisconnected: () => undefined,
    });
    const joined = await client.connect("t", "s");
    assert.deepEqual(joined.connections.map((c) => c.connection_id), ["w-0", "w-1", "p-0"]);
    assert.deepEqual(joined.streams.map((s) => s.stream_id), ["a", "b"]);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(log, ["early after the last page", "late after the last page"]);
    client.disconnect();
  } finally {
    await server.close();
  }
});

test("a message type from a newer server is ignored (its seq still counts); a duplicate seq is dropped", { timeout: 30_000 }, async () => {
  const server = await scripted(() => [
    welcome(0, [], true),
    { type: "something_new", seq: 1 },
    { type: "signal", seq: 2, from: null, signal_type: "x", data: "known" },
    { type: "signal", seq: 2, from: null, signal_type: "x", data: "replayed twice" },
    { type: "mute_forced", seq: 3, stream_id: "st" },
  ]);
  try {
    const events: ServerEvent[] = [];
    const client = new SignalingClient(server.url, WS, { onEvent: (e) => events.push(e), onDisconnected: () => undefined });
    await client.connect("t", "s");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(events, [
      { type: "signal", seq: 2, from: null, signal_type: "x", data: "known" },
      { type: "mute_forced", seq: 3, stream_id: "st" },
    ]);
    client.disconnect();
  } finally {
    await server.close();
  }
});

test("every server error code has a public error name; an unknown code is an unexpected response", () => {
  const expected: Record<string, string> = {
    token_expired: "OT_AUTHENTICATION_ERROR",
    token_forged: "OT_AUTHENTICATION_ERROR",
    unknown_session: "OT_INVALID_SESSION_ID",
    role_forbidden: "OT_PERMISSION_DENIED",
    e2ee_required: "OT_UNSUPPORTED_BROWSER",
    unknown_stream: "OT_NOT_FOUND",
    media_router_unavailable: "OT_STREAM_CREATE_FAILED",
    handshake_timeout: "OT_TIMEOUT",
    resume_gap: "OT_CONNECT_FAILED",
  };
  for (const code of ERROR_CODES) {
    const name = nameForServerCode(code);
    assert.match(name, /^OT_[A-Z_]+$/, code);
    assert.notEqual(name, "OT_UNEXPECTED_SERVER_RESPONSE", code);
    if (expected[code]) assert.equal(name, expected[code], code);
    const e = fromServer(code, "why");
    assert.deepEqual([e.name, e.serverCode, e.message], [name, code, `why (server: ${code})`]);
  }
  const unknown = fromServer("a_code_from_the_future", "why");
  assert.deepEqual([unknown.name, unknown.serverCode], ["OT_UNEXPECTED_SERVER_RESPONSE", undefined]);
  assert.match(unknown.message, /a_code_from_the_future/);
});
