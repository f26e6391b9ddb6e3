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
  let n = 1;
  while (v >> BigInt(8 * n) > 0n) n++;
  return n;
}

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
  const out = new Uint8Array(encodedHeaderLen(kid, ctr));
  let config = 0;
  let at = 1;
  const put = (v: bigint, n: number) => {
    for (let i = n - 1; i >= 0; i--) out[at++] = Number((v >> BigInt(8 * i)) & 0xffn);
  };
  if (kid < 8n) {
    config |= Number(kid) << 4;
  } else {
    const n = byteLen(kid);
    config |= 0x80 | ((n - 1) << 4);
    put(kid, n);
  }
  if (ctr < 8n) {
    config |= Number(ctr);
  } else {
    const n = byteLen(ctr);
    config |= 0x08 | (n - 1);
    put(ctr, n);
  }
  out[0] = config;
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
