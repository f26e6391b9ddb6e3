// Behaviour of senders and receivers over simulated time (docs/e2ee-protocol.md §6-8): the
// mismatch rule and its events, the grace period, the replay window, KID bounds, rollover.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  decodeHeader,
  FrameEncryptor,
  KeyRing,
  MAX_KIDS_PER_STREAM,
  StreamDecryptor,
  suiteById,
  type DecryptOutcome,
  type E2eeEvent,
} from "../src/e2ee/index.js";

const suite = suiteById(6);
const keyA = new Uint8Array(32).fill(0xa1);
const keyB = new Uint8Array(32).fill(0xb2);
// A VP8 delta frame: 3-byte clear header, then payload.
const vp8 = (i: number) => Uint8Array.from([0x31, 0x02, 0x00, ...Array.from({ length: 40 }, (_, k) => (i * 7 + k) & 0xff)]);

function ring(key: Uint8Array, now = 0): KeyRing {
  const r = new KeyRing(suite);
  r.setBaseKey(key, now);
  return r;
}

const types = (evs: E2eeEvent[]) => evs.map((e) => e.type);

test("mismatch needs 10 consecutive failures AND 500 ms; reported once; match once after", async () => {
  const tx = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  const events: string[] = [];
  let firstEventAt = -1;
  // 30 fps for 3 s.
  for (let i = 0; i < 90; i++) {
    const now = Math.round((i * 1000) / 30);
    const out = await rx.decrypt(rxRing, await tx.encrypt("vp8", vp8(i)), now);
    assert.equal(out.status, "auth_failure");
    const evs = types(rx.takeEvents());
    if (evs.length && firstEventAt < 0) firstEventAt = now;
    events.push(...evs);
  }
  assert.deepEqual(events, ["EncryptionSecretMismatch"], "exactly one event for 90 failing frames");
  assert.equal(firstEventAt, 500, "reported on the first frame at which 500 ms have passed");
  assert.equal(rx.isMismatched, true);
  assert.equal(rx.stats.authFailures, 90);

  // The receiver learns the right secret: the next frame decrypts and yields one match event.
  rxRing.setBaseKey(keyA, 3000);
  const ok = await rx.decrypt(rxRing, await tx.encrypt("vp8", vp8(90)), 3000);
  assert.equal(ok.status, "decrypted");
  assert.deepEqual(types(rx.takeEvents()), ["EncryptionSecretMatch"]);
  await rx.decrypt(rxRing, await tx.encrypt("vp8", vp8(91)), 3033);
  assert.deepEqual(rx.takeEvents(), [], "no second match event");
  assert.equal(rx.isMismatched, false);
});

test("a burst of failures shorter than 500 ms, or fewer than 10 frames, is not a mismatch", async () => {
  const tx = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  for (let i = 0; i < 30; i++) await rx.decrypt(rxRing, await tx.encrypt("vp8", vp8(i)), i * 10); // 290 ms
  assert.deepEqual(rx.takeEvents(), []);
  // Slow failures: 9 frames over 8 s is not enough, the 10th is.
  const slow = new StreamDecryptor("vp8");
  for (let i = 0; i < 9; i++) await slow.decrypt(rxRing, await tx.encrypt("vp8", vp8(i)), i * 1000);
  assert.deepEqual(slow.takeEvents(), []);
  await slow.decrypt(rxRing, await tx.encrypt("vp8", vp8(9)), 9000);
  assert.deepEqual(types(slow.takeEvents()), ["EncryptionSecretMismatch"]);
});

test("a decrypted frame breaks the run of failures", async () => {
  const good = await FrameEncryptor.create(suite, keyB);
  const bad = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  let t = 0;
  for (let round = 0; round < 5; round++) {
    for (let i = 0; i < 9; i++) await rx.decrypt(rxRing, await bad.encrypt("vp8", vp8(i)), (t += 100));
    assert.equal((await rx.decrypt(rxRing, await good.encrypt("vp8", vp8(0)), (t += 100))).status, "decrypted");
  }
  assert.deepEqual(rx.takeEvents(), [], "never 10 in a row");
});

test("malformed frames: rate-limited DecryptionInternalError, neither count as failures nor break a run", async () => {
  const tx = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  const garbage = Uint8Array.from([0x31, 0x00]); // delta frame shorter than its 3-byte header
  const evs: string[] = [];
  for (let i = 0; i < 40; i++) {
    const now = i * 50;
    const frame = i % 6 === 0 ? garbage : await tx.encrypt("vp8", vp8(i));
    const out = await rx.decrypt(rxRing, frame, now);
    assert.equal(out.status, i % 6 === 0 ? "malformed" : "auth_failure");
    evs.push(...types(rx.takeEvents()));
  }
  // 33 auth failures with 7 malformed frames among them over ~2 s: the run is unbroken, and
  // coherent (one KID, counters increasing), so it is a mismatch.
  assert.deepEqual(evs, ["DecryptionInternalError", "EncryptionSecretMismatch"]);
  assert.equal((await rx.decrypt(rxRing, garbage, 9999)).status, "malformed");
  assert.deepEqual(rx.takeEvents(), [], "within 10 s of the last report");
  await rx.decrypt(rxRing, garbage, 10_000);
  const [ev] = rx.takeEvents();
  assert.equal(ev?.type, "DecryptionInternalError");
  assert.match((ev as { error: Error }).error.message, /VP8.*shorter than its payload header/);
  assert.deepEqual(rx.stats, { decrypted: 0, authFailures: 33, malformed: 9, replayed: 0 });
});

test("a sender that does not encrypt: one StreamNotEncrypted, never a mismatch, then match when it encrypts", async () => {
  const rxRing = ring(keyA);
  const rx = new StreamDecryptor("vp8");
  const evs: string[] = [];
  // Plain VP8 delta frames whose bytes after the 3-byte header vary like compressed data.
  let x = 0x9e3779b9;
  for (let i = 0; i < 60; i++) {
    const body = Array.from({ length: 60 }, () => {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      return x & 0xff;
    });
    const out = await rx.decrypt(rxRing, Uint8Array.from([0x31, 0x02, 0x00, ...body]), i * 33);
    assert.notEqual(out.status, "decrypted");
    evs.push(...types(rx.takeEvents()));
  }
  assert.deepEqual(evs.filter((e) => e !== "DecryptionInternalError"), ["StreamNotEncrypted"]);
  assert.ok(rx.isMismatched);
  const tx = await FrameEncryptor.create(suite, keyA);
  assert.equal((await rx.decrypt(rxRing, await tx.encrypt("vp8", vp8(1)), 3000)).status, "decrypted");
  assert.deepEqual(types(rx.takeEvents()), ["EncryptionSecretMatch"]);
});

test("frames delivered again from a sender with another secret are still a mismatch", async () => {
  // As Chromium's receive transform hands them over when RTX copies of a frame's packets keep
  // arriving: the second frame 17 times, then the rest once each.
  const tx = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  const evs: string[] = [];
  let now = 0;
  for (let i = 0; i < 20; i++) {
    const p = await tx.encrypt("vp8", vp8(i));
    for (let copy = 0; copy < (i === 1 ? 17 : 1); copy++) {
      assert.equal((await rx.decrypt(rxRing, p, now)).status, "auth_failure");
      evs.push(...types(rx.takeEvents()));
      now += 2;
    }
    now += 33;
  }
  assert.deepEqual(evs, ["EncryptionSecretMismatch"]);
  assert.equal(rx.stats.authFailures, 36, "every copy failed authentication, and is counted as such");
});

test("grace period: the previous secret decrypts for 5 s after a change, then not", async () => {
  const oldSender = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyA, 0);
  const rx = new StreamDecryptor("vp8");
  assert.equal((await rx.decrypt(rxRing, await oldSender.encrypt("vp8", vp8(0)), 0)).status, "decrypted");
  rxRing.setBaseKey(keyB, 1000);
  // A KID already cached under the old epoch, and a new KID that needs key trial.
  const lateSender = await FrameEncryptor.create(suite, keyA);
  assert.equal((await rx.decrypt(rxRing, await oldSender.encrypt("vp8", vp8(1)), 5999)).status, "decrypted");
  assert.equal((await rx.decrypt(rxRing, await lateSender.encrypt("vp8", vp8(1)), 5999)).status, "decrypted");
  assert.equal(rx.trackedKids, 2);
  assert.equal((await rx.decrypt(rxRing, await oldSender.encrypt("vp8", vp8(2)), 6000)).status, "auth_failure");
  assert.equal((await rx.decrypt(rxRing, await lateSender.encrypt("vp8", vp8(2)), 6000)).status, "auth_failure");
  assert.equal(rx.trackedKids, 0, "keys of an epoch that left the ring are dropped");
  const newSender = await FrameEncryptor.create(suite, keyB);
  assert.equal((await rx.decrypt(rxRing, await newSender.encrypt("vp8", vp8(3)), 6000)).status, "decrypted");
  // Setting the current key again changes nothing (no new grace period for the same key).
  assert.equal(rxRing.setBaseKey(keyB, 7000), false);
});

test("replay window: duplicates and too-old counters dropped silently; forged frames never move it", async () => {
  const tx = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyA);
  const rx = new StreamDecryptor("vp8");
  const frames: Uint8Array[] = [];
  for (let i = 0; i < 1100; i++) frames.push(await tx.encrypt("vp8", vp8(i)));
  const st = async (i: number) => (await rx.decrypt(rxRing, frames[i]!, 0)).status;
  assert.equal(await st(5), "decrypted");
  assert.equal(await st(5), "replayed");
  assert.equal(await st(3), "decrypted", "out of order inside the window");
  assert.equal(await st(3), "replayed");
  // A forged frame far ahead (flipped ciphertext bit) must not advance the window...
  const forged = Uint8Array.from(frames[1099]!);
  forged[forged.length - 12]! ^= 1;
  assert.equal((await rx.decrypt(rxRing, forged, 0)).status, "auth_failure");
  // ...so counter 4, 1095 behind the forged one, is still inside the real window.
  assert.equal(await st(4), "decrypted");
  assert.equal(await st(1030), "decrypted");
  assert.equal(await st(6), "replayed", "1024 behind the highest: too old");
  assert.equal(await st(7), "decrypted", "1023 behind: still accepted");
  const events = rx.takeEvents();
  assert.deepEqual(events, [], "replays produce no event");
  assert.equal(rx.stats.replayed, 3);
});

test("replays neither count as failures nor break a run", async () => {
  const good = await FrameEncryptor.create(suite, keyB);
  const bad = await FrameEncryptor.create(suite, keyA);
  const rxRing = ring(keyB);
  const rx = new StreamDecryptor("vp8");
  const replay = await good.encrypt("vp8", vp8(0));
  assert.equal((await rx.decrypt(rxRing, replay, 0)).status, "decrypted");
  const evs: string[] = [];
  for (let i = 0; i < 12; i++) {
    const out: DecryptOutcome = await rx.decrypt(rxRing, i % 3 === 0 ? replay : await bad.encrypt("vp8", vp8(i)), 100 * (i + 1));
    assert.equal(out.status, i % 3 === 0 ? "replayed" : "auth_failure");
    evs.push(...types(rx.takeEvents()));
  }
  assert.deepEqual(evs, []);
  for (let i = 0; i < 2; i++) await rx.decrypt(rxRing, await bad.encrypt("vp8", vp8(i)), 1300 + i * 100);
  assert.deepEqual(types(rx.takeEvents()), ["EncryptionSecretMismatch"], "8 + 2 = 10 failures in a row");
});

test("a stream remembers at most 16 KIDs, evicting the least recently used", async () => {
  const rxRing = ring(keyA);
  const rx = new StreamDecryptor("opus");
  const senders: FrameEncryptor[] = [];
  for (let i = 0; i < MAX_KIDS_PER_STREAM + 4; i++) senders.push(await FrameEncryptor.create(suite, keyA));
  const opus = Uint8Array.from([0xfc, 1, 2, 3, 4]);
  const firstFrames: Uint8Array[] = [];
  for (const s of senders.slice(0, 16)) {
    firstFrames.push(await s.encrypt("opus", opus));
    assert.equal((await rx.decrypt(rxRing, firstFrames.at(-1)!, 0)).status, "decrypted");
  }
  // Touch the first sender so that the second one is the least recently used.
  const replayOfFirst = await senders[0]!.encrypt("opus", opus);
  await rx.decrypt(rxRing, replayOfFirst, 0);
  for (const s of senders.slice(16)) assert.equal((await rx.decrypt(rxRing, await s.encrypt("opus", opus), 0)).status, "decrypted");
  assert.equal(rx.trackedKids, MAX_KIDS_PER_STREAM);
  // The first sender's KID survived (its replay is still detected), the second one was evicted:
  // its old frame is key-trialled again and accepted with a fresh window.
  assert.equal((await rx.decrypt(rxRing, replayOfFirst, 0)).status, "replayed");
  assert.equal((await rx.decrypt(rxRing, firstFrames[1]!, 0)).status, "decrypted", "evicted: replay window forgotten");
  assert.equal(rx.trackedKids, MAX_KIDS_PER_STREAM);
});

test("sender: random KID per epoch, counter from 0, new KID on a secret change, rollover, empty frames", async () => {
  const tx = await FrameEncryptor.create(suite, keyA);
  const other = await FrameEncryptor.create(suite, keyA);
  assert.notEqual(tx.kid, other.kid);
  const h = (f: Uint8Array) => decodeHeader(f.subarray(3)).header;
  const f0 = await tx.encrypt("vp8", vp8(0));
  const f1 = await tx.encrypt("vp8", vp8(1));
  assert.deepEqual([h(f0).kid, h(f0).ctr, h(f1).ctr], [tx.kid, 0n, 1n]);
  assert.equal((await tx.encrypt("vp8", new Uint8Array(0))).length, 0);
  assert.equal(tx.nextCounter, 2n, "an empty frame spends no counter");
  // A frame that cannot be protected still spends its counter.
  await assert.rejects(tx.encrypt("vp8", Uint8Array.of(0x31)), { name: "EncryptionInternalError" });
  assert.equal(tx.nextCounter, 3n);

  const kidA = tx.kid;
  await tx.setBaseKey(keyB);
  assert.notEqual(tx.kid, kidA);
  const g = await tx.encrypt("vp8", vp8(2));
  assert.deepEqual([h(g).kid, h(g).ctr], [tx.kid, 0n]);
  assert.equal((await new StreamDecryptor("vp8").decrypt(ring(keyB), g, 0)).status, "decrypted");

  tx.setCounterLimitForTesting(2n);
  const kidB = tx.kid;
  await tx.encrypt("vp8", vp8(3)); // ctr 1
  const r = await tx.encrypt("vp8", vp8(4)); // limit reached: new KID, ctr 0
  assert.notEqual(h(r).kid, kidB);
  assert.equal(h(r).ctr, 0n);
  assert.equal((await new StreamDecryptor("vp8").decrypt(ring(keyB), r, 0)).status, "decrypted");
});

test("no secret: frames are not passed on; empty frames are", async () => {
  const rx = new StreamDecryptor("vp8");
  const empty = new KeyRing(suite);
  const tx = await FrameEncryptor.create(suite, keyA);
  assert.equal((await rx.decrypt(empty, await tx.encrypt("vp8", vp8(0)), 0)).status, "no_secret");
  const out = await rx.decrypt(empty, new Uint8Array(0), 0);
  assert.equal(out.status, "decrypted");
});
