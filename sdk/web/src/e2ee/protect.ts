// A whole encoded frame to its protected form and back: the codec's framing around one SFrame
// operation per frame (one KID, one counter, one tag). docs/e2ee-protocol.md §5.1.

import { AUTH_FAILED, type AuthFailed } from "./aead.js";
import { ByteWriter } from "./byte-writer.js";
import { concatBytes } from "./bytes.js";
import { FrameError, malformed, truncated } from "./errors.js";
import { describeUnit, framingId, isUnit, splitFrame, writeUnit, codecName, type Codec, type Part } from "./framing/index.js";
import { decodeHeader, encodeHeader, type Header } from "./header.js";
import type { SframeKey } from "./sframe-key.js";
import type { CipherSuite } from "./suite.js";

/** Largest frame accepted, plaintext or protected (§9): far above real frames, far below AES-CTR's per-nonce limit. */
export const MAX_FRAME_LEN = 16 * 1024 * 1024;

function checkLen(len: number): void {
  if (len > MAX_FRAME_LEN) {
    throw new FrameError("TooLarge", `frame of ${len} bytes exceeds the limit of ${MAX_FRAME_LEN} bytes`);
  }
}

const EMPTY = new Uint8Array(0);
/** Room for one unit's metadata entry (H.264: 2 + head + 4; AV1: 2 + 4; prefix codecs: the head). */
const AAD_PER_UNIT = 16;

/**
 * Protects `frame` under `key` with the SFrame header `(kid, ctr)`. The caller must never reuse
 * a (key, ctr) pair. Throws FrameError if the frame cannot be protected.
 */
export async function sealFrame(codec: Codec, key: SframeKey, kid: bigint, ctr: bigint, frame: Uint8Array): Promise<Uint8Array> {
  checkLen(frame.length);
  const parts = splitFrame(codec, frame, "plain");
  const header = encodeHeader(kid, ctr);
  const aad = new ByteWriter(header.length + 1 + AAD_PER_UNIT * parts.length);
  aad.pushBytes(header);
  aad.push(framingId(codec));
  const bodies: Uint8Array[] = [];
  for (const p of parts) {
    if (!isUnit(p)) continue;
    describeUnit(codec, p.head, p.body.length, aad);
    bodies.push(p.body);
  }
  // Every frame a receiver accepts must be authenticated; one without a unit cannot be.
  if (bodies.length === 0) throw malformed(codecName(codec), "no unit to protect");
  const lens = bodies.map((b) => b.length);
  // One unit (VP8, VP9, Opus, most AV1 and single-slice H.264 frames): its body is the plaintext.
  const plaintext = bodies.length === 1 ? bodies[0]! : concatBytes(bodies);
  const { ct, tag } = await key.aead.seal(key.nonce(ctr), aad.finish(), plaintext);

  // Exact for VP8, VP9, Opus and opaque frames; H.264 escaping and AV1 obu_size fields change
  // the length (the writer grows, or the result is copied to its exact length).
  const out = new ByteWriter(frame.length + header.length + tag.length + (codec === "av1" ? 8 * lens.length : 0));
  let unit = 0;
  let offset = 0;
  for (const p of parts) {
    if (!isUnit(p)) {
      out.pushBytes(p.clear);
      continue;
    }
    const share = ct.subarray(offset, offset + lens[unit]!);
    offset += lens[unit]!;
    const first = unit === 0 ? header : EMPTY;
    const last = unit === lens.length - 1 ? tag : EMPTY;
    writeUnit(codec, p.head, [first, share, last], "wire", out);
    unit++;
  }
  checkLen(out.length);
  return out.finishExact();
}

/** A protected frame taken apart, ready to be opened with one or more candidate keys. */
export class WireFrame {
  private constructor(
    readonly codec: Codec,
    private readonly parts: Part[],
    readonly header: Header,
    private readonly aad: Uint8Array,
    private readonly ciphertext: Uint8Array,
    private readonly lens: number[],
    private readonly tag: Uint8Array,
    /** Bytes of the original frame outside the protected bodies (clear parts and heads). */
    private readonly clearLen: number,
  ) {}

  /** Throws FrameError if the frame cannot be taken apart under `codec`'s rule and `suite`'s tag length. */
  static parse(codec: Codec, suite: CipherSuite, frame: Uint8Array): WireFrame {
    checkLen(frame.length);
    const parts = splitFrame(codec, frame, "wire");
    const bodies: Uint8Array[] = [];
    for (const p of parts) if (isUnit(p)) bodies.push(p.body);
    if (bodies.length === 0) throw malformed(codecName(codec), "no protected unit");
    const { header, len: headerLen } = decodeHeader(bodies[0]!);
    const lens = bodies.map((b) => b.length);
    lens[0]! -= headerLen;
    const last = lens.length - 1;
    if (lens[last]! < suite.tagLen) throw truncated("protected frame shorter than its tag");
    lens[last]! -= suite.tagLen;

    const aad = new ByteWriter(headerLen + 1 + AAD_PER_UNIT * parts.length);
    aad.pushBytes(bodies[0]!.subarray(0, headerLen));
    aad.push(framingId(codec));
    const shares: Uint8Array[] = [];
    let clearLen = 0;
    let i = 0;
    for (const p of parts) {
      if (!isUnit(p)) {
        clearLen += p.clear.length;
        continue;
      }
      clearLen += p.head.length;
      describeUnit(codec, p.head, lens[i]!, aad);
      const start = i === 0 ? headerLen : 0;
      shares.push(p.body.subarray(start, start + lens[i]!));
      i++;
    }
    const lastBody = bodies[last]!;
    const tag = lastBody.slice(lastBody.length - suite.tagLen);
    const ciphertext = shares.length === 1 ? shares[0]! : concatBytes(shares);
    return new WireFrame(codec, parts, header, aad.finish(), ciphertext, lens, tag, clearLen);
  }

  /** The original frame if it authenticates under `key`, else AUTH_FAILED. */
  async open(key: SframeKey): Promise<Uint8Array | AuthFailed> {
    const plain = await key.aead.open(key.nonce(this.header.ctr), this.aad, this.ciphertext, this.tag);
    if (plain === AUTH_FAILED) return AUTH_FAILED;
    // Exact but for AV1, whose obu_size fields are re-encoded (the writer grows if need be).
    const out = new ByteWriter(this.clearLen + plain.length);
    let unit = 0;
    let offset = 0;
    for (const p of this.parts) {
      if (!isUnit(p)) {
        out.pushBytes(p.clear);
        continue;
      }
      writeUnit(this.codec, p.head, [plain.subarray(offset, offset + this.lens[unit]!)], "plain", out);
      offset += this.lens[unit]!;
      unit++;
    }
    return out.finishExact();
  }
}

/** Opens one protected frame with an explicit key: no key trial, no replay protection. */
export async function openFrame(
  codec: Codec,
  key: SframeKey,
  frame: Uint8Array,
): Promise<{ header: Header; frame: Uint8Array } | AuthFailed> {
  const wire = WireFrame.parse(codec, key.suite, frame);
  const plain = await wire.open(key);
  return plain === AUTH_FAILED ? AUTH_FAILED : { header: wire.header, frame: plain };
}
