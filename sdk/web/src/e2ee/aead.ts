// The AEADs of RFC 9605 §4.5 on WebCrypto: AES-CTR + truncated HMAC (§4.5.1) and AES-GCM.

import { FrameError } from "./errors.js";
import { bs, concatBytes, constantTimeEqual } from "./bytes.js";
import { NONCE_LEN, type CipherSuite } from "./suite.js";

/** Result of `open` when the tag does not verify (not an exception: it is the common case of a wrong secret). */
export const AUTH_FAILED = Symbol("AUTH_FAILED");
export type AuthFailed = typeof AUTH_FAILED;

function backend(what: string, cause: unknown): FrameError {
  const detail = cause instanceof Error ? `: ${cause.message}` : "";
  return new FrameError("Crypto", `crypto backend failure during ${what}${detail}`);
}

/** A keyed AEAD for one SFrame key. Build with `Aead.create`. */
export class Aead {
  /**
   * Reused per-frame inputs. WebCrypto copies its inputs before the call returns (WebCrypto
   * "get a copy of the bytes held by"), and nothing awaits between filling and passing them, so
   * reuse is safe and spares a frame-sized allocation per call: at 20-50 frames a second,
   * allocations and cold code, not the cipher, are most of the per-frame CPU.
   */
  private macInput = new Uint8Array(0);
  private macView = new DataView(this.macInput.buffer);
  private readonly counterBlock = new Uint8Array(16);

  private constructor(
    readonly suite: CipherSuite,
    private readonly encKey: CryptoKey,
    private readonly authKey: CryptoKey | null,
  ) {}

  /** `key` is the suite's Nk bytes (for CTR+HMAC: the AES key, then the HMAC key). */
  static async create(suite: CipherSuite, key: Uint8Array): Promise<Aead> {
    if (key.length !== suite.keyLen) {
      throw new FrameError("Crypto", `key setup: ${key.length}-byte key for suite ${suite.id}, which needs ${suite.keyLen}`);
    }
    try {
      if (suite.kind === "gcm") {
        const k = await crypto.subtle.importKey("raw", bs(key), "AES-GCM", false, ["encrypt", "decrypt"]);
        return new Aead(suite, k, null);
      }
      const enc = await crypto.subtle.importKey("raw", bs(key.subarray(0, suite.aesKeyLen)), "AES-CTR", false, ["encrypt"]);
      const auth = await crypto.subtle.importKey(
        "raw",
        bs(key.subarray(suite.aesKeyLen)),
        { name: "HMAC", hash: suite.hash },
        false,
        ["sign"],
      );
      return new Aead(suite, enc, auth);
    } catch (e) {
      throw backend("key import", e);
    }
  }

  /** Returns the ciphertext and the tag of `plaintext`. */
  async seal(nonce: Uint8Array, aad: Uint8Array, plaintext: Uint8Array): Promise<{ ct: Uint8Array; tag: Uint8Array }> {
    if (nonce.length !== NONCE_LEN) throw new FrameError("Crypto", "nonce of wrong length");
    if (this.authKey === null) {
      let sealed: Uint8Array;
      try {
        sealed = new Uint8Array(
          await crypto.subtle.encrypt(
            { name: "AES-GCM", iv: bs(nonce), additionalData: bs(aad), tagLength: 128 },
            this.encKey,
            bs(plaintext),
          ),
        );
      } catch (e) {
        throw backend("AES-GCM seal", e);
      }
      const split = sealed.length - this.suite.tagLen;
      return { ct: sealed.subarray(0, split), tag: sealed.subarray(split) };
    }
    const ct = await this.ctr(nonce, plaintext);
    const tag = await this.hmacTag(nonce, aad, ct);
    return { ct, tag };
  }

  /**
   * Verifies `tag` over `ct` and only then decrypts. Returns the plaintext, or `AUTH_FAILED`.
   * Throws `FrameError` only when the crypto backend itself fails.
   */
  async open(nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array, tag: Uint8Array): Promise<Uint8Array | AuthFailed> {
    if (tag.length !== this.suite.tagLen) return AUTH_FAILED;
    if (this.authKey === null) {
      try {
        return new Uint8Array(
          await crypto.subtle.decrypt(
            { name: "AES-GCM", iv: bs(nonce), additionalData: bs(aad), tagLength: 128 },
            this.encKey,
            bs(concatBytes([ct, tag])),
          ),
        );
      } catch (e) {
        // WebCrypto reports a tag mismatch as OperationError and gives no other detail.
        if (e instanceof Error && e.name === "OperationError") return AUTH_FAILED;
        throw backend("AES-GCM open", e);
      }
    }
    const expected = await this.hmacTag(nonce, aad, ct);
    if (!constantTimeEqual(expected, tag)) return AUTH_FAILED;
    return this.ctr(nonce, ct);
  }

  /** AES-CTR with the initial counter block `nonce || 00000000`, a 32-bit block counter. */
  private async ctr(nonce: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
    if (data.length === 0) return new Uint8Array(0);
    this.counterBlock.set(nonce);
    let out: ArrayBuffer;
    try {
      out = await crypto.subtle.encrypt({ name: "AES-CTR", counter: this.counterBlock, length: 32 }, this.encKey, bs(data));
    } catch (e) {
      throw backend("AES-CTR", e);
    }
    return new Uint8Array(out);
  }

  /** `HMAC(auth_key, BE64(len(aad)) || BE64(len(ct)) || BE64(Nt) || nonce || aad || ct)`, truncated to Nt. */
  private async hmacTag(nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Promise<Uint8Array> {
    const len = 24 + NONCE_LEN + aad.length + ct.length;
    if (this.macInput.length < len) {
      this.macInput = new Uint8Array(Math.max(len, 2 * this.macInput.length));
      this.macView = new DataView(this.macInput.buffer);
    }
    const input = this.macInput.subarray(0, len);
    putBe64(this.macView, 0, aad.length);
    putBe64(this.macView, 8, ct.length);
    putBe64(this.macView, 16, this.suite.tagLen);
    input.set(nonce, 24);
    input.set(aad, 24 + NONCE_LEN);
    input.set(ct, 24 + NONCE_LEN + aad.length);
    let mac: ArrayBuffer;
    try {
      mac = await crypto.subtle.sign("HMAC", this.authKey!, bs(input));
    } catch (e) {
      throw backend("HMAC", e);
    }
    return new Uint8Array(mac, 0, this.suite.tagLen);
  }
}

/** A length (< 2^53, a safe integer) as a big-endian 64-bit integer, without a BigInt. */
function putBe64(view: DataView, at: number, v: number): void {
  view.setUint32(at, Math.floor(v / 0x1_0000_0000));
  view.setUint32(at + 4, v >>> 0);
}
