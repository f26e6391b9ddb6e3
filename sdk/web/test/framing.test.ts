// Codec-aware framing on real encoder output (testdata/frames/*.frames: VP8, VP9, H.264, AV1,
// Opus) and on adversarial synthetic input: what stays readable stays identical, H.264 output
// has no start-code emulation and splits into the same NAL units, AV1 keeps its OBU structure,
// and every frame decrypts back to itself.

import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  FrameEncryptor,
  KeyRing,
  StreamDecryptor,
  splitFrame,
  suiteById,
  type Codec,
} from "../src/e2ee/index.js";
import { sliceHeaderPrefixLen } from "../src/e2ee/framing/h264.js";
import { readLeb128, splitAv1 } from "../src/e2ee/framing/av1.js";
import { vp9PrefixLen } from "../src/e2ee/framing/prefix.js";
import { TESTDATA } from "./support.js";

/** `u32 big-endian length || bytes` records. */
function readFrames(name: string): Uint8Array[] {
  const buf = readFileSync(join(TESTDATA, "frames", name));
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < buf.length; ) {
    const len = buf.readUInt32BE(pos);
    out.push(new Uint8Array(buf.subarray(pos + 4, pos + 4 + len)));
    pos += 4 + len;
  }
  return out;
}

/** NAL units of an Annex B frame, trailing zeros stripped (an independent splitter). */
function nalUnits(f: Uint8Array): Uint8Array[] {
  const starts: number[] = [];
  for (let i = 0; i + 2 < f.length; i++) if (f[i] === 0 && f[i + 1] === 0 && f[i + 2] === 1) starts.push(i + 3);
  return starts.map((s, k) => {
    let e = k + 1 < starts.length ? starts[k + 1]! - 3 : f.length;
    while (e > s && f[e - 1] === 0) e--;
    return f.subarray(s, e);
  });
}

function obuHeaders(f: Uint8Array): string[] {
  return splitAv1(f).map((p) => ("clear" in p ? `clear:${p.clear[0]! & 0xfd}` : `unit:${p.head[0]! & 0xfd}`));
}

const suite = suiteById(6);
const baseKey = new Uint8Array(32).fill(0x5a);

async function roundTrip(codec: Codec, frames: Uint8Array[], check: (plain: Uint8Array, sealed: Uint8Array) => void): Promise<number> {
  const tx = await FrameEncryptor.create(suite, baseKey);
  const ring = new KeyRing(suite);
  ring.setBaseKey(baseKey, 0);
  const rx = new StreamDecryptor(codec);
  let n = 0;
  for (const f of frames) {
    const sealed = await tx.encrypt(codec, f);
    check(f, sealed);
    const out = await rx.decrypt(ring, sealed, 0);
    assert.equal(out.status, "decrypted", `${codec} frame ${n}`);
    assert.deepEqual((out as { frame: Uint8Array }).frame, f, `${codec} frame ${n}`);
    n++;
  }
  return n;
}

test("real VP8, VP9 and Opus frames: the codec's header bytes stay as they were", async (t) => {
  for (const [codec, file] of [["vp8", "vp8.frames"], ["vp9", "vp9.frames"], ["opus", "opus.frames"]] as const) {
    const frames = readFrames(file);
    const n = await roundTrip(codec, frames, (plain, sealed) => {
      const head = (splitFrame(codec, plain, "plain")[0] as { head: Uint8Array }).head;
      assert.deepEqual(sealed.subarray(0, head.length), head);
      assert.ok(sealed.length > plain.length, "header and tag added");
    });
    assert.ok(n >= 10, `${file}: ${n} frames`);
    t.diagnostic(`${file}: ${n} frames`);
  }
});

test("real H.264 frames (single and multi-slice): no start-code emulation, same NAL units and slice heads", async (t) => {
  for (const file of ["h264.frames", "h264-slices.frames"]) {
    const frames = readFrames(file);
    const n = await roundTrip("h264", frames, (plain, sealed) => {
      const a = nalUnits(plain);
      const b = nalUnits(sealed);
      assert.equal(b.length, a.length, "same number of NAL units");
      for (let i = 0; i < a.length; i++) {
        const type = a[i]![0]! & 0x1f;
        assert.equal(b[i]![0], a[i]![0], "same NAL header");
        if (type === 1 || type === 5) {
          const head = 1 + sliceHeaderPrefixLen(a[i]!.subarray(1));
          assert.deepEqual(b[i]!.subarray(0, head), a[i]!.subarray(0, head), "first_mb, slice_type, pps_id readable");
        }
        if ([7, 8, 9].includes(type)) assert.deepEqual(b[i], a[i], "parameter sets and AUDs untouched");
      }
      // The depacketizer must see no start code, and no 00 00 00, inside a protected unit.
      for (const nal of b) for (let i = 0; i + 2 < nal.length; i++) assert.ok(!(nal[i] === 0 && nal[i + 1] === 0 && nal[i + 2]! <= 2), "emulation");
    });
    t.diagnostic(`${file}: ${n} frames`);
  }
});

test("real AV1 temporal units: the OBU sequence and headers are preserved", async (t) => {
  const frames = readFrames("av1.frames");
  const n = await roundTrip("av1", frames, (plain, sealed) => {
    assert.deepEqual(obuHeaders(sealed), obuHeaders(plain));
  });
  t.diagnostic(`av1.frames: ${n} frames`);
});

test("H.264 escaping survives adversarial zero runs", async () => {
  // A slice whose body is full of zeros, 01, 02 and 03 bytes: after encryption the ciphertext is
  // random, so check the escape directly through a crafted key stream: many random frames.
  let seed = 0x12345678;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  const frames: Uint8Array[] = [];
  for (let k = 0; k < 300; k++) {
    const body = Array.from({ length: 1 + (rand() % 64) }, () => [0, 0, 0, 1, 2, 3, rand()][rand() % 7]!);
    // IDR slice: first_mb 0, slice_type 7, pps 0 -> 0x88 0x80, then the body (escaped like an encoder would).
    const raw = [0x65, 0x88, 0x84, ...body, 0x80];
    const escaped: number[] = [];
    let z = 0;
    for (const b of raw) {
      if (z >= 2 && b <= 3) {
        escaped.push(3);
        z = 0;
      }
      escaped.push(b);
      z = b === 0 ? z + 1 : 0;
    }
    frames.push(Uint8Array.from([0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 1, ...escaped]));
  }
  const n = await roundTrip("h264", frames, (_plain, sealed) => {
    const nals = nalUnits(sealed);
    assert.equal(nals.length, 2);
    for (let i = 0; i + 2 < nals[1]!.length; i++) assert.ok(!(nals[1]![i] === 0 && nals[1]![i + 1] === 0 && nals[1]![i + 2]! <= 2));
    assert.equal(sealed[sealed.length - 1], 0x80, "terminator");
  });
  assert.equal(n, 300);
});

test("malformed input is refused with a reason, never misread", () => {
  assert.throws(() => splitFrame("h264", Uint8Array.of(0x65, 1, 2), "plain"), /does not start with a start code/);
  assert.throws(() => splitFrame("h264", Uint8Array.of(0, 0, 1, 0x65, 0, 0, 0, 0, 0x80), "plain"), /Exp-Golomb code too long|truncated/);
  assert.throws(() => splitFrame("h264", Uint8Array.of(0, 0, 1, 0x65, 0xe0, 0x11, 0x22), "wire"), /lacks its 0x80 terminator/);
  assert.throws(() => splitFrame("h264", Uint8Array.of(0, 0, 1, 0x65, 0xe0, 0, 0, 2, 0x80), "wire"), /start code emulation/);
  assert.equal(splitFrame("h264", Uint8Array.of(0, 0, 1, 0x65, 0xe0, 0, 0, 3, 2, 0x80), "wire").length, 2, "an escaped 02 is fine");
  assert.throws(() => splitFrame("av1", Uint8Array.of(0x92, 0), "plain"), /forbidden bit/);
  assert.throws(() => splitFrame("av1", Uint8Array.of(0x32, 0x05, 0xaa), "plain"), /exceeds frame/);
  assert.throws(() => readLeb128(new Uint8Array(8).fill(0x80)), /longer than 8 bytes/);
  assert.throws(() => readLeb128(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x1f)), /too large/);
  assert.deepEqual(readLeb128(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f)), [0xffffffff, 5]);
  assert.throws(() => splitFrame("vp8", Uint8Array.of(0x50, 0, 0), "plain"), /shorter than its payload header/);
  assert.throws(() => splitFrame("vp8", new Uint8Array(0), "plain"), /empty frame/);
  // VP9 first-byte rules (same cases as the Rust core's unit tests).
  assert.deepEqual([0b1000_0010, 0b1000_0110, 0b1000_1001, 0b1011_0100, 0b1011_0000].map(vp9PrefixLen), [10, 3, 1, 2, 10]);
  // Slice header fields: 1 byte when all three fit, 2 when slice_type needs more bits.
  assert.equal(sliceHeaderPrefixLen(Uint8Array.of(0xe0, 0x11)), 1);
  assert.equal(sliceHeaderPrefixLen(Uint8Array.of(0x88, 0x80, 0xff)), 2);
});

test("a frame with nothing to protect is refused by the sender, and spends its counter", async () => {
  const tx = await FrameEncryptor.create(suite, baseKey);
  // H.264 with only SPS and PPS; AV1 with only a temporal delimiter and a sequence header.
  await assert.rejects(tx.encrypt("h264", Uint8Array.of(0, 0, 0, 1, 0x67, 0x42, 0, 0, 1, 0x68, 0xce)), { name: "EncryptionInternalError", message: /no unit to protect/ });
  await assert.rejects(tx.encrypt("av1", Uint8Array.of(0x12, 0x00, 0x0a, 0x01, 0x00)), { name: "EncryptionInternalError" });
  assert.equal(tx.nextCounter, 2n);
});
