// RFC 9605 proper: the per-KID key schedule (§4.4.2) and whole SFrame ciphertexts
// (`header || ciphertext || tag`) with caller-supplied metadata (§4.4.3-4.4.4).

import { Aead, AUTH_FAILED, type AuthFailed } from "./aead.js";
import { be16, be64, bs, concatBytes } from "./bytes.js";
import { FrameError, truncated } from "./errors.js";
import { decodeHeader, encodeHeader, type Header } from "./header.js";
import { NONCE_LEN, type CipherSuite } from "./suite.js";

const LABEL_PREFIX = "SFrame 1.0 Secret ";
const SAFE_CTR = BigInt(Number.MAX_SAFE_INTEGER);

/** `"SFrame 1.0 Secret key " || BE64(KID) || BE16(suite)` (or "salt "); note the trailing space. */
export function keyScheduleLabel(kind: "key" | "salt", kid: bigint, suiteId: number): Uint8Array {
  return concatBytes([new TextEncoder().encode(`${LABEL_PREFIX}${kind} `), be64(kid), be16(suiteId)]);
}

/** The key, salt and keyed AEAD of one KID. */
export class SframeKey {
  private constructor(
    readonly suite: CipherSuite,
    readonly aead: Aead,
    readonly salt: Uint8Array,
  ) {}

  /**
   * `derive_key_salt(KID, base_key)`: HKDF-Extract with an empty salt, then HKDF-Expand with the
   * key and salt labels. WebCrypto's HKDF does extract-and-expand in one deriveBits call.
   */
  static async derive(suite: CipherSuite, baseKey: Uint8Array, kid: bigint): Promise<SframeKey> {
    let key: Uint8Array;
    let salt: Uint8Array;
    try {
      const ikm = await crypto.subtle.importKey("raw", bs(baseKey), "HKDF", false, ["deriveBits"]);
      const expand = async (info: Uint8Array, len: number) =>
        new Uint8Array(
          await crypto.subtle.deriveBits(
            { name: "HKDF", hash: suite.hash, salt: new Uint8Array(0), info: bs(info) },
            ikm,
            len * 8,
          ),
        );
      key = await expand(keyScheduleLabel("key", kid, suite.id), suite.keyLen);
      salt = await expand(keyScheduleLabel("salt", kid, suite.id), NONCE_LEN);
    } catch (e) {
      throw new FrameError("Crypto", `crypto backend failure during HKDF: ${e instanceof Error ? e.message : e}`);
    }
    const k = await SframeKey.fromParts(suite, key, salt);
    key.fill(0);
    return k;
  }

  /** A key from an already derived `sframe_key` and `sframe_salt`. */
  static async fromParts(suite: CipherSuite, sframeKey: Uint8Array, salt: Uint8Array): Promise<SframeKey> {
    if (salt.length !== NONCE_LEN) throw new FrameError("Crypto", "SFrame salt of wrong length");
    return new SframeKey(suite, await Aead.create(suite, sframeKey), Uint8Array.from(salt));
  }

  /** `sframe_salt XOR BE96(ctr)`. */
  nonce(ctr: bigint): Uint8Array {
    const n = Uint8Array.from(this.salt);
    if (ctr <= SAFE_CTR) {
      // Counters of real streams stay far below 2^53: plain numbers spare a BigInt per frame.
      let v = Number(ctr);
      for (let i = NONCE_LEN - 1; v > 0; i--) {
        n[i]! ^= v % 256;
        v = Math.floor(v / 256);
      }
      return n;
    }
    const c = be64(ctr);
    for (let i = 0; i < 8; i++) n[NONCE_LEN - 8 + i]! ^= c[i]!;
    return n;
  }

  /** The AEAD alone: `ciphertext || tag`. */
  async sealRaw(ctr: bigint, aad: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const { ct, tag } = await this.aead.seal(this.nonce(ctr), aad, plaintext);
    return concatBytes([ct, tag]);
  }

  async openRaw(ctr: bigint, aad: Uint8Array, sealed: Uint8Array): Promise<Uint8Array | AuthFailed> {
    const split = sealed.length - this.suite.tagLen;
    if (split < 0) throw truncated("ciphertext shorter than its tag");
    return this.aead.open(this.nonce(ctr), aad, sealed.subarray(0, split), sealed.subarray(split));
  }

  /** `header || ciphertext || tag`, authenticating `header || metadata`. */
  async encrypt(kid: bigint, ctr: bigint, metadata: Uint8Array, plaintext: Uint8Array): Promise<Uint8Array> {
    const header = encodeHeader(kid, ctr);
    const { ct, tag } = await this.aead.seal(this.nonce(ctr), concatBytes([header, metadata]), plaintext);
    return concatBytes([header, ct, tag]);
  }

  /** Opens `header || ciphertext || tag`; `AUTH_FAILED` when the tag does not verify. */
  async decrypt(metadata: Uint8Array, sframe: Uint8Array): Promise<{ header: Header; plaintext: Uint8Array } | AuthFailed> {
    const { header, len } = decodeHeader(sframe);
    if (sframe.length < len + this.suite.tagLen) throw truncated("SFrame ciphertext shorter than its tag");
    const split = sframe.length - this.suite.tagLen;
    const aad = concatBytes([sframe.subarray(0, len), metadata]);
    const pt = await this.aead.open(this.nonce(header.ctr), aad, sframe.subarray(len, split), sframe.subarray(split));
    return pt === AUTH_FAILED ? AUTH_FAILED : { header, plaintext: pt };
  }
}
