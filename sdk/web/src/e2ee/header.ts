// The SFrame header (RFC 9605 §4.3): config byte X|K(3)|Y|C(3), then KID and CTR as big-endian
// integers in the fewest bytes, each inlined in the config byte when below 8.

import { FrameError, truncated } from "./errors.js";
import { U64_MAX } from "./bytes.js";

export const MAX_HEADER_LEN = 17;

export interface Header {
  readonly kid: bigint;
  readonly ctr: bigint;
}

function byteLen(v: bigint): number {
  if (v <= SAFE) {
    // The common case (counters, and KIDs below 2^53) without a BigInt per step.
    let n = 1;
    for (let x = Math.floor(Number(v) / 256); x > 0; x = Math.floor(x / 256)) n++;
    return n;
  }
  let n = 1;
  while (v >> BigInt(8 * n) > 0n) n++;
  return n;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function checkU64(v: bigint, what: string): void {
  if (v < 0n || v > U64_MAX) throw new FrameError("BadHeader", `${what} ${v} is not a 64-bit unsigned integer`);
}

export function encodedHeaderLen(kid: bigint, ctr: bigint): number {
  const field = (v: bigint) => (v < 8n ? 0 : byteLen(v));
  return 1 + field(kid) + field(ctr);
}

export function encodeHeader(kid: bigint, ctr: bigint): Uint8Array {
  checkU64(kid, "KID");
  checkU64(ctr, "CTR");
  const kidBytes = kid < 8n ? null : bigEndian(kid);
  const ctrBytes = ctr < 8n ? null : bigEndian(ctr);
  const out = new Uint8Array(1 + (kidBytes?.length ?? 0) + (ctrBytes?.length ?? 0));
  let config = kidBytes ? 0x80 | ((kidBytes.length - 1) << 4) : Number(kid) << 4;
  config |= ctrBytes ? 0x08 | (ctrBytes.length - 1) : Number(ctr);
  out[0] = config;
  if (kidBytes) out.set(kidBytes, 1);
  if (ctrBytes) out.set(ctrBytes, 1 + (kidBytes?.length ?? 0));
  return out;
}

/** `v` in the fewest big-endian bytes. */
function bigEndian(v: bigint): Uint8Array {
  const out = new Uint8Array(byteLen(v));
  if (v <= SAFE) {
    let x = Number(v);
    for (let i = out.length - 1; i >= 0; i--, x = Math.floor(x / 256)) out[i] = x % 256;
    return out;
  }
  for (let i = out.length - 1; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

/**
 * Parses a header at the start of `buf`; returns it and its encoded length. Non-minimal
 * encodings are accepted: the header bytes are authenticated as received.
 */
export function decodeHeader(buf: Uint8Array): { header: Header; len: number } {
  if (buf.length === 0) throw truncated("empty SFrame header");
  const config = buf[0]!;
  let pos = 1;
  const field = (extended: boolean, inline: number): bigint => {
    if (!extended) return BigInt(inline);
    const n = inline + 1;
    if (pos + n > buf.length) throw truncated("SFrame header KID/CTR");
    let v = 0n;
    for (let i = 0; i < n; i++) v = (v << 8n) | BigInt(buf[pos + i]!);
    pos += n;
    return v;
  };
  const kid = field((config & 0x80) !== 0, (config >> 4) & 0x07);
  const ctr = field((config & 0x08) !== 0, config & 0x07);
  return { header: { kid, ctr }, len: pos };
}
