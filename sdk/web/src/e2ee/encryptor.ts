// The sending side of one track (docs/e2ee-protocol.md §6).

import { E2eeError, FrameError } from "./errors.js";
import { U64_MAX } from "./bytes.js";
import type { Codec } from "./framing/index.js";
import { sealFrame } from "./protect.js";
import { SframeKey } from "./sframe-key.js";
import type { CipherSuite } from "./suite.js";

/** A uniformly random 64-bit KID from the platform CSPRNG. */
export function randomKid(): bigint {
  const b = new Uint8Array(8);
  try {
    crypto.getRandomValues(b);
  } catch (e) {
    const fe = new FrameError("Randomness", "the platform random number generator failed");
    throw new E2eeError("EncryptionInternalError", `encryption failed: ${fe.message}`, fe);
  }
  return new DataView(b.buffer).getBigUint64(0);
}

function internal(e: unknown): E2eeError {
  if (e instanceof E2eeError) return e;
  const fe = e instanceof FrameError ? e : new FrameError("Crypto", String(e));
  return new E2eeError("EncryptionInternalError", `encryption failed: ${fe.message}`, fe);
}

/**
 * Encrypts the frames of one sending track. Each secret epoch gets a fresh random 64-bit KID
 * and a counter from 0, so nonces are unique without coordination between senders.
 */
export class FrameEncryptor {
  private nextCtr = 0n;
  private ctrLimit = U64_MAX;
  private rollover: Promise<void> | null = null;

  private constructor(
    readonly suite: CipherSuite,
    private baseKey: Uint8Array,
    private currentKid: bigint,
    private key: SframeKey,
  ) {}

  /** A track sending under `baseKey` with a random KID. */
  static async create(suite: CipherSuite, baseKey: Uint8Array): Promise<FrameEncryptor> {
    return FrameEncryptor.withKid(suite, baseKey, randomKid());
  }

  /** As `create` with a chosen KID. Only for test vectors: a real KID must be random. */
  static async withKid(suite: CipherSuite, baseKey: Uint8Array, kid: bigint): Promise<FrameEncryptor> {
    try {
      return new FrameEncryptor(suite, Uint8Array.from(baseKey), kid, await SframeKey.derive(suite, baseKey, kid));
    } catch (e) {
      throw internal(e);
    }
  }

  get kid(): bigint {
    return this.currentKid;
  }

  /** The counter the next frame will carry. */
  get nextCounter(): bigint {
    return this.nextCtr;
  }

  /** Test hook: lowers the counter limit to exercise KID rollover. */
  setCounterLimitForTesting(limit: bigint): void {
    this.ctrLimit = limit;
  }

  /**
   * Switches to a new secret: new random KID, counter 0. Frames submitted after this promise
   * resolves use the new key. The caller should then ask the encoder for a key frame.
   */
  async setBaseKey(baseKey: Uint8Array): Promise<void> {
    await this.newEpoch(Uint8Array.from(baseKey));
  }

  private async newEpoch(baseKey: Uint8Array): Promise<void> {
    let kid = randomKid();
    while (kid === this.currentKid) kid = randomKid();
    let key: SframeKey;
    try {
      key = await SframeKey.derive(this.suite, baseKey, kid);
    } catch (e) {
      throw internal(e);
    }
    // Swapped in one synchronous step: a frame never sees a KID with another epoch's key.
    this.baseKey = baseKey;
    this.currentKid = kid;
    this.key = key;
    this.nextCtr = 0n;
  }

  /** Protects one encoded frame. An empty frame carries nothing and is returned empty (§5.2). */
  async encrypt(codec: Codec, frame: Uint8Array): Promise<Uint8Array> {
    if (frame.length === 0) return new Uint8Array(0);
    while (this.nextCtr >= this.ctrLimit) {
      // The counter never wraps: a new KID starts a new nonce space.
      this.rollover ??= this.newEpoch(this.baseKey).finally(() => (this.rollover = null));
      await this.rollover;
    }
    const key = this.key;
    const kid = this.currentKid;
    // Spent even if sealing fails: a counter is never offered twice.
    const ctr = this.nextCtr++;
    try {
      return await sealFrame(codec, key, kid, ctr, frame);
    } catch (e) {
      throw internal(e);
    }
  }
}
