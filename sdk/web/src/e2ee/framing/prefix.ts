// Codecs whose readable part is a prefix fixed by the frame's first byte (§5.4): VP8, VP9,
// Opus, and opaque with an empty prefix. The receiver computes the same length from the
// protected frame, since the first byte stays as it was.

import { malformed } from "../errors.js";
import { codecName, type Codec } from "./codec.js";

export function clearPrefixLen(codec: Exclude<Codec, "h264" | "av1">, frame: Uint8Array): number {
  let n: number;
  switch (codec) {
    case "opaque":
      n = 0;
      break;
    case "opus":
      n = 1; // the TOC byte
      break;
    case "vp8":
      n = vp8PrefixLen(first(codec, frame));
      break;
    case "vp9":
      n = vp9PrefixLen(first(codec, frame));
      break;
  }
  if (frame.length < n) throw malformed(codecName(codec), "frame shorter than its payload header");
  return n;
}

function first(codec: Codec, frame: Uint8Array): number {
  if (frame.length === 0) throw malformed(codecName(codec), "empty frame");
  return frame[0]!;
}

/**
 * VP8 (RFC 6386 §9.1): the 3-byte frame tag, whose bit 0 is 0 on key frames; key frames add the
 * start code and the 14-bit width and height with scaling, which depacketizers read.
 */
export function vp8PrefixLen(b0: number): number {
  return (b0 & 0x01) === 0 ? 10 : 3;
}

/**
 * VP9 uncompressed header, first byte (bit 7 most significant): frame_marker(2),
 * profile_low_bit, profile_high_bit, [reserved_zero if profile 3], show_existing_frame, then
 * frame_to_show_map_idx(3) or frame_type.
 */
export function vp9PrefixLen(b0: number): number {
  const profile = ((b0 >> 5) & 1) | (((b0 >> 4) & 1) << 1);
  let bit = 3;
  if (profile === 3) bit -= 1; // reserved_zero
  const showExisting = ((b0 >> bit) & 1) === 1;
  if (showExisting) return profile === 3 ? 2 : 1; // the whole header
  const keyFrame = ((b0 >> (bit - 1)) & 1) === 0;
  return keyFrame ? 10 : 3;
}
