// The mismatch rule of docs/e2ee-protocol.md §8 on its own, the same cases as the Rust core's
// (crates/umbra-e2ee/src/mismatch.rs and tests/mismatch_runs.rs): the runs captured from real
// browsers in testdata/mismatch-runs.json, copies of a frame, headers of plain media.

import { test } from "node:test";
import assert from "node:assert/strict";
import { FrameError, MALFORMED_EVENT_INTERVAL_MS, MismatchDetector, type E2eeEvent } from "../src/e2ee/index.js";
import { readVectors } from "./support.js";

/** A frame length for tests where every frame has its own counter anyway. */
const LEN = 1200;

type Failure = [ms: number, kid: bigint, ctr: bigint, length: number];

/** Feeds failures to a fresh detector; returns [index, event type] of each event. */
function replay(failures: Failure[]): [number, string][] {
  const d = new MismatchDetector();
  const out: [number, string][] = [];
  failures.forEach(([ms, kid, ctr, length], i) => {
    const e = d.onAuthFailure(ms, kid, ctr, length);
    if (e) out.push([i, e.type]);
  });
  return out;
}

const type = (e: E2eeEvent | null) => e?.type ?? null;

test("needs both frames and time; reported once; match once", () => {
  let d = new MismatchDetector();
  // 30 failures within 290 ms: not yet.
  for (let i = 0; i < 30; i++) assert.equal(d.onAuthFailure(i * 10, 7n, BigInt(i), LEN), null);
  assert.equal(type(d.onAuthFailure(500, 7n, 30n, LEN)), "EncryptionSecretMismatch");
  assert.equal(d.onAuthFailure(900, 7n, 31n, LEN), null, "reported once");
  assert.equal(type(d.onSuccess()), "EncryptionSecretMatch");
  assert.equal(d.onSuccess(), null);
  // Slow failures: long enough, but fewer than 10 frames.
  d = new MismatchDetector();
  for (let i = 0; i < 9; i++) assert.equal(d.onAuthFailure(i * 1000, 7n, BigInt(i), LEN), null);
  assert.equal(type(d.onAuthFailure(9000, 7n, 9n, LEN)), "EncryptionSecretMismatch");
});

test("malformed events are rate limited", () => {
  const d = new MismatchDetector();
  const e = new FrameError("Truncated", "x");
  assert.ok(d.onMalformed(0, e));
  for (let i = 1; i < 9; i++) assert.equal(d.onMalformed(i * 50, e), null);
  d.onSuccess();
  assert.equal(d.onMalformed(600, e), null, "a decrypted frame does not reset the rate limit");
  assert.ok(d.onMalformed(MALFORMED_EVENT_INTERVAL_MS, e));
});

test("a rotating sender with loss and reordering is a mismatch", () => {
  // KID 1 then KID 2 (a secret change), every fifth frame lost, two frames swapped.
  const ctrs: [bigint, bigint][] = [];
  for (let c = 0; c < 12; c++) if (c % 5 !== 4) ctrs.push([1n, BigInt(c)]);
  for (let c = 0; c < 12; c++) ctrs.push([2n, BigInt(c)]);
  [ctrs[3], ctrs[4]] = [ctrs[4]!, ctrs[3]!];
  const events = replay(ctrs.map(([kid, ctr], i) => [33 * i, kid, ctr, LEN]));
  assert.deepEqual(events.map(([, t]) => t), ["EncryptionSecretMismatch"]);
});

test("random headers are a stream that is not encrypted", () => {
  const d = new MismatchDetector();
  const events: string[] = [];
  // What a plain frame's bytes read as: a KID and counter that change every frame (the Rust
  // test's xorshift64, so both see the same headers).
  let x = 0x9e3779b97f4a7c15n;
  const mask = (1n << 64n) - 1n;
  for (let i = 0; i < 30; i++) {
    x ^= (x << 13n) & mask;
    x ^= x >> 7n;
    x ^= (x << 17n) & mask;
    const e = d.onAuthFailure(33 * i, x % 8n, x >> 40n, LEN);
    if (e) events.push(e.type);
  }
  assert.deepEqual(events, ["StreamNotEncrypted"], "once, and never a mismatch");
  assert.ok(d.isMismatched);
  assert.equal(type(d.onSuccess()), "EncryptionSecretMatch");
});

test("a run of unparseable frames is not encrypted", () => {
  const d = new MismatchDetector();
  const e = new FrameError("BadHeader", "x");
  const events: string[] = [];
  for (let i = 0; i < 20; i++) {
    const ev = d.onMalformed(33 * i, e);
    if (ev) events.push(ev.type);
  }
  assert.deepEqual(events, ["DecryptionInternalError", "StreamNotEncrypted"]);
});

test("copies of a frame delivered again are not a counter that stands still", () => {
  // Captured in Chromium 156 (browser test native-other-secret-to-chromium): the VP8 track of a
  // native publisher with another secret. The receive transform got frame 1 seventeen times (RTX
  // copies of its packet, sent as bandwidth-probing padding) before the key frame; counted, those
  // copies made the run "not encrypted".
  const kid = 5480551399604879813n;
  const run: Failure[] = [0, 14, 14, 14, 14, 14, 15, 15, 15, 15, 15, 29, 30, 30, 30, 30, 30].map((ms) => [ms, kid, 1n, 1216]);
  const rest = [[30, 5311], [61, 1784], [92, 1680], [123, 2055], [154, 1771], [186, 1767], [233, 2105], [264, 2389],
    [295, 2164], [326, 2280], [358, 5194], [389, 2559], [420, 1223], [467, 2548], [498, 2918], [530, 2737]] as const;
  rest.forEach(([ms, length], i) => run.push([ms, kid, BigInt(i + 2), length]));
  assert.deepEqual(replay(run), [[run.length - 1, "EncryptionSecretMismatch"]]);
});

test("a copy arriving after a later frame is skipped too", () => {
  // Captured likewise: frame 3 again after frame 4.
  const kid = 841098200808262055n;
  const run = ([
    [0, 2, 5311], [31, 3, 1784], [31, 3, 1784], [78, 4, 1680], [78, 3, 1784], [93, 5, 2055], [140, 6, 1771],
    [171, 7, 1767], [203, 8, 2105], [234, 9, 2389], [265, 10, 2164], [297, 11, 2280], [327, 12, 2430],
    [374, 13, 7341], [405, 14, 3476], [437, 15, 1338], [468, 16, 2698], [499, 17, 2340], [531, 18, 3458],
  ] as const).map(([ms, ctr, length]): Failure => [ms, kid, BigInt(ctr), length]);
  assert.deepEqual(replay(run), [[run.length - 1, "EncryptionSecretMismatch"]]);
});

test("plain frames that read as one header are distinct frames", () => {
  // Plain VP8 delta frames often read as counter 3 (captured: most frames of the plaintext
  // publisher); with another length each is another frame, not a copy, and a counter that does
  // not grow is what a sender that does not encrypt looks like.
  const run = Array.from({ length: 20 }, (_, i): Failure => [33 * i, 5n, 3n, 1000 + i]);
  assert.deepEqual(replay(run), [[16, "StreamNotEncrypted"]], "at the first frame 500 ms in");
});

test("copies neither count nor break a run", () => {
  const d = new MismatchDetector();
  // One frame delivered 30 times over a second: one failure, no verdict.
  for (let i = 0; i < 30; i++) assert.equal(d.onAuthFailure(33 * i, 9n, 0n, 800), null);
  // Nine more distinct frames complete a run of ten.
  const events: string[] = [];
  for (let c = 1; c < 10; c++) {
    const e = d.onAuthFailure(1000 + 33 * c, 9n, BigInt(c), 800);
    if (e) events.push(e.type);
  }
  assert.deepEqual(events, ["EncryptionSecretMismatch"]);
});

test("runs captured from real browsers give the verdict the sender deserves (testdata/mismatch-runs.json)", () => {
  const file = readVectors("mismatch-runs.json") as {
    runs: { name: string; expect: string; at: number; failures: [number, string, string, number][] }[];
  };
  assert.ok(file.runs.length >= 10);
  for (const run of file.runs) {
    const failures = run.failures.map(([ms, kid, ctr, length]): Failure => [ms, BigInt(kid), BigInt(ctr), length]);
    assert.deepEqual(replay(failures), [[run.at, run.expect]], run.name);
  }
});
