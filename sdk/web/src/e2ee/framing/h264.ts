// H.264 Annex B framing (docs/e2ee-protocol.md §5.5).
//
// Browsers' H.264 packetizers split frames at start codes and read each NAL header; their
// depacketizers parse SPS/PPS and the first fields of slice headers to find frame starts and
// check that a key frame's parameter sets arrived. So start codes and parameter sets stay clear
// (not authenticated: receivers rewrite SPS VUI and may insert parameter sets), every other NAL
// unit keeps its header (slices: plus first_mb_in_slice, slice_type, pic_parameter_set_id)
// readable and authenticated, and its rest is encrypted. Each encrypted region is escaped with
// emulation prevention so it never contains a start code, and ends with 0x80 so no unit ends in
// a zero byte (which an Annex B parser would take for part of the next start code).

import { malformed } from "../errors.js";
import { be16, be32 } from "../bytes.js";
import type { ByteWriter } from "../byte-writer.js";
import type { Form, Part } from "./codec.js";

const TERMINATOR = 0x80;

function bad(reason: string) {
  return malformed("H.264", reason);
}

/** SPS, PPS, AUD, end of sequence, end of stream, filler, SPS extension, subset SPS. */
function isClearType(t: number): boolean {
  return t === 7 || t === 8 || t === 9 || t === 10 || t === 11 || t === 12 || t === 13 || t === 15;
}

/** The next `00 00 01` at or after `from`: [index of its first zero, index after the 01]. */
function nextStartCode(buf: Uint8Array, from: number): [number, number] | null {
  let i = from;
  while (i + 3 <= buf.length) {
    const b2 = buf[i + 2]!;
    if (b2 === 1 && buf[i] === 0 && buf[i + 1] === 0) return [i, i + 3];
    // A 0 at i+2 may start a start code at i+1 or i+2; anything else lets us skip 3 bytes.
    i += b2 === 0 ? 1 : 3;
  }
  return null;
}

export function splitH264(frame: Uint8Array, form: Form): Part[] {
  const parts: Part[] = [];
  const first = nextStartCode(frame, 0);
  // Only zero bytes may precede the first start code (a 4-byte or longer start code).
  if (first === null || frame.subarray(0, first[0]).some((b) => b !== 0)) {
    throw bad("frame does not start with a start code");
  }
  parts.push({ clear: frame.subarray(0, first[1]) });
  let pos = first[1];
  while (pos < frame.length) {
    const next = nextStartCode(frame, pos);
    const nalEnd = next ? next[0] : frame.length;
    // Zero bytes before a start code (or at the end) belong to the separator, not the NAL unit.
    let end = nalEnd;
    while (end > pos && frame[end - 1] === 0) end--;
    if (end > pos) parts.push(nalPart(frame.subarray(pos, end), form));
    const sepEnd = next ? next[1] : frame.length;
    if (end < sepEnd) parts.push({ clear: frame.subarray(end, sepEnd) });
    pos = sepEnd;
  }
  return parts;
}

function nalPart(nal: Uint8Array, form: Form): Part {
  const type = nal[0]! & 0x1f;
  if (isClearType(type)) return { clear: nal };
  let headLen: number;
  if (type === 1 || type === 5) headLen = 1 + sliceHeaderPrefixLen(nal.subarray(1));
  else if (type === 14 || type === 20 || type === 21) headLen = 4; // 3-byte NAL header extension
  else headLen = 1;
  if (nal.length < headLen) throw bad("NAL unit shorter than its header");
  const head = nal.subarray(0, headLen);
  const rest = nal.subarray(headLen);
  return { head, body: form === "plain" ? rest : unescapeRegion(rest, trailingZeros(head)) };
}

/**
 * Raw bytes (emulation-prevention bytes included) that hold the slice header's first three
 * ue(v) fields: first_mb_in_slice, slice_type, pic_parameter_set_id.
 */
export function sliceHeaderPrefixLen(payload: Uint8Array): number {
  const r = new BitReader(payload);
  r.ue(); // first_mb_in_slice
  const sliceType = r.ue();
  const ppsId = r.ue();
  if (sliceType > 9 || ppsId > 255) throw bad("slice header out of range");
  return r.bytesTouched;
}

/** Reads bits of a NAL payload, skipping emulation-prevention bytes (03 after two zeros). */
class BitReader {
  private byte = 0;
  private bit = 8;
  private zeros = 0;
  private current = 0;
  bytesTouched = 0;

  constructor(private readonly buf: Uint8Array) {}

  private next(): number {
    if (this.bit === 8) {
      for (;;) {
        if (this.byte >= this.buf.length) throw bad("slice header truncated");
        const b = this.buf[this.byte++]!;
        if (this.zeros >= 2 && b === 3) {
          this.zeros = 0;
          continue;
        }
        this.zeros = b === 0 ? this.zeros + 1 : 0;
        this.current = b;
        break;
      }
      this.bit = 0;
      this.bytesTouched = this.byte;
    }
    return (this.current >> (7 - this.bit++)) & 1;
  }

  /** Exp-Golomb ue(v); more than 31 leading zeros is malformed. */
  ue(): number {
    let zeros = 0;
    while (this.next() === 0) {
      if (++zeros > 31) throw bad("Exp-Golomb code too long");
    }
    let v = 1;
    for (let i = 0; i < zeros; i++) v = v * 2 + this.next(); // may exceed 2^31: use float math
    return v - 1;
  }
}

/** Zero bytes ending the head (at most 2): the escape's zero count continues from them. */
function trailingZeros(head: Uint8Array): number {
  let n = 0;
  for (let i = head.length - 1; i >= 0 && n < 2 && head[i] === 0; i--) n++;
  return n;
}

/** Inverse of the escape: drops the 0x80 terminator and every 03 after two zeros. */
function unescapeRegion(region: Uint8Array, zeros: number): Uint8Array {
  if (region.length === 0 || region[region.length - 1] !== TERMINATOR) {
    throw bad("protected NAL unit lacks its 0x80 terminator");
  }
  const out = new Uint8Array(region.length - 1);
  let n = 0;
  for (let i = 0; i < region.length - 1; i++) {
    const b = region[i]!;
    if (zeros >= 2) {
      if (b === 3) {
        zeros = 0;
        continue;
      }
      if (b <= 2) throw bad("start code emulation inside protected region");
    }
    out[n++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, n);
}

/** AAD entry: `BE16(len(head)) || head || BE32(len(body))`. */
export function describeH264(head: Uint8Array, bodyLen: number, out: ByteWriter): void {
  out.pushBytes(be16(head.length));
  out.pushBytes(head);
  out.pushBytes(be32(bodyLen));
}

/** Writes a unit: head, then the pieces of its region (escaped and terminated in wire form). */
export function writeH264Unit(head: Uint8Array, pieces: readonly Uint8Array[], form: Form, out: ByteWriter): void {
  out.pushBytes(head);
  if (form === "plain") {
    for (const p of pieces) out.pushBytes(p);
    return;
  }
  let zeros = trailingZeros(head);
  for (const p of pieces) {
    for (let i = 0; i < p.length; i++) {
      const b = p[i]!;
      if (zeros >= 2 && b <= 3) {
        out.push(3);
        zeros = 0;
      }
      out.push(b);
      zeros = b === 0 ? zeros + 1 : 0;
    }
  }
  out.push(TERMINATOR);
}
