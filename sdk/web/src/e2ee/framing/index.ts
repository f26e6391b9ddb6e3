// Codec-aware framing (docs/e2ee-protocol.md §5): which bytes of an encoded frame stay readable
// (and authenticated) so packetizers, depacketizers and the router still work, and where the
// SFrame header, ciphertext and tag go.

import type { ByteWriter } from "../byte-writer.js";
import { describeAv1, splitAv1, writeAv1Unit } from "./av1.js";
import type { Codec, Form, Part } from "./codec.js";
import { describeH264, splitH264, writeH264Unit } from "./h264.js";
import { clearPrefixLen } from "./prefix.js";

export * from "./codec.js";

/** Splits `frame` into parts according to `codec`'s rule. Throws FrameError if it cannot. */
export function splitFrame(codec: Codec, frame: Uint8Array, form: Form): Part[] {
  switch (codec) {
    case "h264":
      return splitH264(frame, form);
    case "av1":
      return splitAv1(frame);
    default: {
      const n = clearPrefixLen(codec, frame);
      return [{ head: frame.subarray(0, n), body: frame.subarray(n) }];
    }
  }
}

/** Appends a unit's metadata entry: what of its head and shape the tag covers. */
export function describeUnit(codec: Codec, head: Uint8Array, bodyLen: number, out: ByteWriter): void {
  switch (codec) {
    case "h264":
      return describeH264(head, bodyLen, out);
    case "av1":
      return describeAv1(head, bodyLen, out);
    default:
      // The head's first byte fixes its length and the body runs to the end: the head is enough.
      out.pushBytes(head);
  }
}

/** Writes a unit: its head, then its body given as consecutive pieces, in `form`. */
export function writeUnit(codec: Codec, head: Uint8Array, pieces: readonly Uint8Array[], form: Form, out: ByteWriter): void {
  switch (codec) {
    case "h264":
      return writeH264Unit(head, pieces, form, out);
    case "av1":
      return writeAv1Unit(head, pieces, out);
    default:
      out.pushBytes(head);
      for (const p of pieces) out.pushBytes(p);
  }
}
