// AV1 framing over the low-overhead OBU sequence (docs/e2ee-protocol.md §5.6).
//
// RTP packetizers walk the OBUs, drop temporal delimiters and tile lists, strip and re-add
// obu_size, and read sequence headers to mark key frames. So every OBU header stays readable;
// sequence headers, temporal delimiters, tile lists and padding stay clear and unauthenticated;
// every other OBU's payload is protected. Its header is authenticated with has_size_field masked,
// since depacketizers set that bit on every OBU they rebuild.

import { malformed } from "../errors.js";
import { be32 } from "../bytes.js";
import type { ByteWriter } from "../byte-writer.js";
import type { Part } from "./codec.js";

const HAS_SIZE = 0x02;
const HAS_EXTENSION = 0x04;

function bad(reason: string) {
  return malformed("AV1", reason);
}

/** Sequence header, temporal delimiter, tile list, padding. */
function isClearType(t: number): boolean {
  return t === 1 || t === 2 || t === 8 || t === 15;
}

export function splitAv1(frame: Uint8Array): Part[] {
  if (frame.length === 0) throw bad("empty frame");
  const parts: Part[] = [];
  let pos = 0;
  while (pos < frame.length) {
    const h = frame[pos]!;
    if (h & 0x80) throw bad("OBU forbidden bit set");
    const type = (h >> 3) & 0x0f;
    const headLen = h & HAS_EXTENSION ? 2 : 1;
    if (pos + headLen > frame.length) throw bad("OBU header truncated");
    const head = frame.subarray(pos, pos + headLen);
    let p = pos + headLen;
    let size: number;
    if (h & HAS_SIZE) {
      const [v, n] = readLeb128(frame.subarray(p));
      size = v;
      p += n;
    } else {
      size = frame.length - p;
    }
    const end = p + size;
    if (end > frame.length) throw bad("OBU size exceeds frame");
    parts.push(isClearType(type) ? { clear: frame.subarray(pos, end) } : { head, body: frame.subarray(p, end) });
    pos = end;
  }
  return parts;
}

/** leb128 as AV1 uses it: at most 8 bytes, value below 2^32. Returns [value, bytes read]. */
export function readLeb128(buf: Uint8Array): [number, number] {
  let value = 0;
  for (let i = 0; i < 8; i++) {
    if (i >= buf.length) throw bad("obu_size truncated");
    const b = buf[i]!;
    value += (b & 0x7f) * 2 ** (7 * i); // float math: 7*i reaches 49 bits, exact below 2^53
    if ((b & 0x80) === 0) {
      if (value > 0xffffffff) throw bad("obu_size too large");
      return [value, i + 1];
    }
  }
  throw bad("obu_size longer than 8 bytes");
}

/** The shortest leb128 encoding of `v`. */
export function writeLeb128(v: number, out: ByteWriter): void {
  for (;;) {
    const b = v % 128;
    v = Math.floor(v / 128);
    if (v === 0) {
      out.push(b);
      return;
    }
    out.push(b | 0x80);
  }
}

/** AAD entry: OBU header with has_size_field masked, extension byte if any, `BE32(len(body))`. */
export function describeAv1(head: Uint8Array, bodyLen: number, out: ByteWriter): void {
  out.push(head[0]! & ~HAS_SIZE & 0xff);
  out.pushBytes(head.subarray(1));
  out.pushBytes(be32(bodyLen));
}

/** Writes an OBU with the minimal obu_size when its header says it has one. */
export function writeAv1Unit(head: Uint8Array, pieces: readonly Uint8Array[], out: ByteWriter): void {
  out.pushBytes(head);
  if (head[0]! & HAS_SIZE) writeLeb128(pieces.reduce((n, p) => n + p.length, 0), out);
  for (const p of pieces) out.pushBytes(p);
}
