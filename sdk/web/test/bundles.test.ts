// The built artefacts (npm run build): what a page loads. Runs after the build in
// scripts/test.d/30-web-sdk.sh; skipped (and says so) when dist/ is missing.

import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import vm from "node:vm";
import { decodeHeader } from "../src/e2ee/index.js";

const DIST = resolve(dirname(fileURLToPath(import.meta.url)), "../../dist");
const built = existsSync(resolve(DIST, "umbra.mjs"));
const skip = built ? false : "dist/ not built (run npm run build)";

test("no WebAssembly anywhere: pages with a strict CSP need no 'wasm-unsafe-eval'", { skip }, () => {
  for (const f of ["umbra.js", "umbra.mjs", "umbra-e2ee-worker.js"]) {
    const code = readFileSync(resolve(DIST, f), "utf8");
    assert.doesNotMatch(code, /WebAssembly|\.wasm\b/, f);
    assert.doesNotMatch(code, /\beval\(|new Function\(/, `${f} needs no 'unsafe-eval' either`);
  }
});

test("ESM bundle: OT with the OpenTok.js surface; errors before any network", { skip }, async () => {
  const mod = await import(pathToFileURL(resolve(DIST, "umbra.mjs")).href);
  const OT = mod.default;
  assert.equal(OT, mod.OT);
  for (const fn of ["initSession", "initPublisher", "hasEndToEndEncryptionSupport", "on", "off", "once"]) assert.equal(typeof OT[fn], "function", fn);
  assert.equal(OT.hasEndToEndEncryptionSupport(), false, "Node has no encoded transforms");
  const session = OT.initSession("key", "1_MX4", { encryptionSecret: "1234567", serverUrl: "http://127.0.0.1:9" });
  const err = await new Promise<any>((r) => session.connect("token", r));
  assert.equal(err.name, "OT_INVALID_ENCRYPTION_SECRET");
  assert.ok(err instanceof mod.OTError);
  await assert.rejects(session.setEncryptionSecret("🔐".repeat(7)), { name: "OT_INVALID_ENCRYPTION_SECRET" });
  assert.throws(() => OT.initSession("key", ""), { name: "OT_INVALID_SESSION_ID" });
  assert.ok(existsSync(resolve(DIST, "types/entry-esm.d.ts")), "typed");
});

test("classic script defines the global OT and finds its worker next to itself", { skip }, () => {
  const code = readFileSync(resolve(DIST, "umbra.js"), "utf8");
  const ctx: Record<string, unknown> = { document: { currentScript: { src: "https://video.example.com/sdk/umbra.js" } }, URL, TextEncoder, crypto, setTimeout, clearTimeout };
  vm.createContext(ctx);
  vm.runInContext(code, ctx);
  const OT = ctx.OT as { initSession: (...a: unknown[]) => unknown; version: string };
  assert.equal(typeof OT.initSession, "function");
  assert.equal(OT.version, JSON.parse(readFileSync(resolve(DIST, "../package.json"), "utf8")).version);
});

test("worker bundle: answers setKey and encrypts frames handed to it by rtctransform", { skip }, async (t) => {
  const listeners = new Map<string, (e: unknown) => void>();
  const posted: any[] = [];
  const g = globalThis as Record<string, unknown>;
  const saved = { addEventListener: g.addEventListener, postMessage: g.postMessage };
  g.addEventListener = (type: string, l: (e: unknown) => void) => listeners.set(type, l);
  g.postMessage = (m: unknown) => posted.push(m);
  // The worker posts through its global scope whenever it reports: keep the stubs until the end.
  t.after(() => {
    g.addEventListener = saved.addEventListener;
    g.postMessage = saved.postMessage;
  });
  vm.runInThisContext(readFileSync(resolve(DIST, "umbra-e2ee-worker.js"), "utf8"));
  listeners.get("message")!({ data: { type: "setKey", requestId: 1, baseKey: new Uint8Array(32).fill(7), suite: 6 } });
  for (let i = 0; i < 100 && posted.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(posted[0], { type: "keySet", requestId: 1 });
  const out: any[] = [];
  let push!: (f: unknown) => void;
  const transformer = {
    readable: new ReadableStream({ start: (c) => void (push = (f) => c.enqueue(f)) }),
    writable: new WritableStream({ write: (f) => void out.push(f) }),
    options: { transformId: "t", operation: "encrypt", mimeType: "audio/opus" },
  };
  listeners.get("rtctransform")!({ transformer });
  push({ data: Uint8Array.from([0xfc, 1, 2, 3]).buffer, getMetadata: () => ({}) });
  for (let i = 0; i < 100 && out.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const bytes = new Uint8Array(out[0].data);
  assert.equal(bytes[0], 0xfc, "TOC byte readable");
  const { header, len } = decodeHeader(bytes.subarray(1));
  assert.equal(header.ctr, 0n);
  assert.equal(bytes.length, 1 + len + 3 + 10, "TOC || SFrame header || 3 bytes of ciphertext || 10-byte tag");
});
