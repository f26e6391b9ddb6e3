// End-to-end encrypted signals (docs/e2ee-protocol.md §12) on WebCrypto: suite-6 SFrame objects
// under a signal key derived from the base key with its own label, bound to the session and the
// sender's connection id, with a replay window per sender. The same format as umbra-e2ee's
// signal.rs, checked against testdata/umbra-signal-vectors.json.

import { be16, bs, concatBytes } from "./bytes.js";
import { FrameError } from "./errors.js";
import { decodeHeader, MAX_HEADER_LEN } from "./header.js";
import { randomKid } from "./encryptor.js";
import type { KeyRing } from "./keyring.js";
import { ReplayWindow } from "./replay.js";
import { SframeKey } from "./sframe-key.js";
import { suiteById } from "./suite.js";
import { AUTH_FAILED } from "./aead.js";

/** The `type` an encrypted signal travels under; the application's own type is inside. */
export const SIGNAL_WIRE_TYPE = "umbra-e2ee-signal-1";
export const SIGNAL_KEY_LABEL = "umbra/e2ee/v1/signal";
/** Signals use suite 6 whatever the session's media suite. */
export const SIGNAL_SUITE = suiteById(6);
export const MAX_SIGNAL_WIRE_DATA = 8192;
export const MAX_SIGNAL_TYPE_LEN = 128;
/** Most UTF-8 bytes of type + data an encrypted signal carries (8192 base64url characters). */
export const MAX_SIGNAL_PLAINTEXT = (MAX_SIGNAL_WIRE_DATA / 4) * 3 - MAX_HEADER_LEN - 10 - 1;
/** Sender epochs (connection, KID) a receiver remembers. */
export const MAX_SIGNAL_SENDERS = 1024;

const U64_LAST = (1n << 64n) - 1n;
const TYPE_RULE = /^[A-Za-z0-9_-]*$/;

/** The reasons of docs/e2ee-protocol.md §12.3 (and, for sealing, an invalid parameter). */
export type SignalErrorName =
  | "EncryptionSecretMissing"
  | "EncryptionSecretMismatch"
  | "ReplayedSignal"
  | "DecryptionInternalError"
  | "InvalidParameter";

export class SignalError extends Error {
  constructor(
    override readonly name: SignalErrorName,
    message: string,
  ) {
    super(message);
  }
}

export interface PlainSignal {
  /** Empty when the sender gave no type. */
  signalType: string;
  data: string;
}

const malformed = (why: string) => new SignalError("DecryptionInternalError", `malformed encrypted signal: ${why}`);

/** `HKDF-SHA-512(salt = "", ikm = base_key, info = "umbra/e2ee/v1/signal", 32)`. */
export async function signalBaseKey(baseKey: Uint8Array): Promise<Uint8Array> {
  const ikm = await crypto.subtle.importKey("raw", bs(baseKey), "HKDF", false, ["deriveBits"]);
  const info = new TextEncoder().encode(SIGNAL_KEY_LABEL);
  return new Uint8Array(
    await crypto.subtle.deriveBits({ name: "HKDF", hash: "SHA-512", salt: new Uint8Array(0), info: bs(info) }, ikm, 256),
  );
}

/** `BE16(len(session_id)) || session_id || BE16(len(sender)) || sender`. */
function metadata(sessionId: string, sender: string): Uint8Array {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  for (const p of [enc.encode(sessionId), enc.encode(sender)]) {
    if (p.length > 0xffff) throw malformed("session or connection id too long");
    parts.push(be16(p.length), p);
  }
  return concatBytes(parts);
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const B64URL_VALUE = new Map([...B64URL].map((c, i) => [c, i] as const));

export function base64UrlEncode(b: Uint8Array): string {
  let out = "";
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i]! << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    const chars = Math.min(3, b.length - i) + 1;
    for (let k = 0; k < chars; k++) out += B64URL[(n >>> (18 - 6 * k)) & 63];
  }
  return out;
}

/** Strict: the URL-safe alphabet, no padding, no stray bits in the last character. */
export function base64UrlDecode(s: string): Uint8Array | null {
  if (s.length % 4 === 1) return null;
  const out = new Uint8Array(Math.floor((s.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let at = 0;
  for (const c of s) {
    const v = B64URL_VALUE.get(c);
    if (v === undefined) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (acc >>> bits) & 0xff;
    }
  }
  if (bits > 0 && (acc & ((1 << bits) - 1)) !== 0) return null;
  return out;
}

/** One participant's outgoing signals for one secret and one connection id. */
export class SignalSealer {
  private constructor(
    private readonly signalKey: Uint8Array,
    private key: SframeKey,
    private kidValue: bigint,
    private ctr: bigint,
    readonly sender: string,
  ) {}

  static async create(baseKey: Uint8Array, sender: string): Promise<SignalSealer> {
    return SignalSealer.withKid(baseKey, sender, randomKid(), 0n);
  }

  /** Test vectors only: a chosen KID and first counter. */
  static async withKid(baseKey: Uint8Array, sender: string, kid: bigint, ctr: bigint): Promise<SignalSealer> {
    const signalKey = await signalBaseKey(baseKey);
    return new SignalSealer(signalKey, await SframeKey.derive(SIGNAL_SUITE, signalKey, kid), kid, ctr, sender);
  }

  get kid(): bigint {
    return this.kidValue;
  }

  /**
   * The wire `data` for `type` (empty for none) and `data`. The counter is taken before the
   * first await, so concurrent calls never share one.
   */
  async seal(sessionId: string, signalType: string, data: string): Promise<string> {
    if (signalType.length > MAX_SIGNAL_TYPE_LEN || !TYPE_RULE.test(signalType)) {
      throw new SignalError("InvalidParameter", `signal type must be at most ${MAX_SIGNAL_TYPE_LEN} letters, digits, '-' or '_'`);
    }
    const enc = new TextEncoder();
    const t = enc.encode(signalType);
    const d = enc.encode(data);
    if (t.length + d.length > MAX_SIGNAL_PLAINTEXT) {
      throw new SignalError(
        "InvalidParameter",
        `an encrypted signal carries at most ${MAX_SIGNAL_PLAINTEXT} bytes of type and data; this one has ${t.length + d.length}`,
      );
    }
    if (this.ctr === U64_LAST) {
      // Never the last counter value, never a wrap: a new KID starts again at 0.
      this.kidValue = randomKid();
      this.ctr = 0n;
      this.key = await SframeKey.derive(SIGNAL_SUITE, this.signalKey, this.kidValue);
    }
    const ctr = this.ctr++;
    const key = this.key;
    const kid = this.kidValue;
    const pt = concatBytes([Uint8Array.of(t.length), t, d]);
    return base64UrlEncode(await key.encrypt(kid, ctr, metadata(sessionId, this.sender), pt));
  }
}

interface SenderEpoch {
  epoch: number;
  key: SframeKey;
  window: ReplayWindow;
  lastUsed: number;
}

/**
 * A receiver's signal state: the key found per (connection, KID) and its replay window. Calls
 * must not overlap (the session opens signals one at a time, in arrival order).
 */
export class SignalOpener {
  private readonly senders = new Map<string, SenderEpoch>();
  private uses = 0;

  get size(): number {
    return this.senders.size;
  }

  /** Opens the `data` of a wire signal of type SIGNAL_WIRE_TYPE; throws `SignalError`. */
  async open(ring: KeyRing, now: number, sessionId: string, from: string | null, wireData: string): Promise<PlainSignal> {
    if (!ring.hasSecret) throw new SignalError("EncryptionSecretMissing", "no encryption secret is set, so the signal cannot be decrypted");
    if (wireData.length > MAX_SIGNAL_WIRE_DATA) throw malformed("longer than a signal can be");
    const sealed = base64UrlDecode(wireData);
    if (!sealed) throw malformed("not base64url");
    let kid: bigint;
    let ctr: bigint;
    try {
      ({ kid, ctr } = decodeHeader(sealed).header);
    } catch {
      throw malformed("no SFrame header");
    }
    const sender = from ?? "";
    const meta = metadata(sessionId, sender);
    const id = `${kid}:${sender}`;
    const mismatch = () => new SignalError("EncryptionSecretMismatch", "the signal does not authenticate with this encryption secret (encryption secret mismatch)");
    const tryKey = async (key: SframeKey) => {
      try {
        return await key.decrypt(meta, sealed);
      } catch (e) {
        if (e instanceof FrameError && e.kind !== "Crypto") throw malformed("shorter than its SFrame header and tag");
        throw new SignalError("DecryptionInternalError", `signal crypto failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    };

    let entry = this.senders.get(id);
    if (entry && !ring.isLive(entry.epoch, now)) {
      this.senders.delete(id);
      entry = undefined;
    }
    let plaintext: Uint8Array;
    if (entry) {
      const r = await tryKey(entry.key);
      if (r === AUTH_FAILED) throw mismatch();
      plaintext = r.plaintext;
    } else {
      let found: { epoch: number; key: SframeKey; plaintext: Uint8Array } | null = null;
      for (const e of ring.candidates(now)) {
        const key = await SframeKey.derive(SIGNAL_SUITE, await signalBaseKey(e.baseKey), kid);
        const r = await tryKey(key);
        if (r !== AUTH_FAILED) {
          found = { epoch: e.id, key, plaintext: r.plaintext };
          break;
        }
      }
      if (!found) throw mismatch();
      this.makeRoom();
      entry = { epoch: found.epoch, key: found.key, window: new ReplayWindow(), lastUsed: 0 };
      this.senders.set(id, entry);
      plaintext = found.plaintext;
    }
    entry.lastUsed = ++this.uses;
    if (!entry.window.check(ctr)) {
      throw new SignalError("ReplayedSignal", `signal with KID ${kid} and counter ${ctr} was already received or is too old (replayed)`);
    }
    entry.window.accept(ctr);
    return parsePlaintext(plaintext);
  }

  /** Forgets a connection's senders (it left the session). */
  forget(connectionId: string): void {
    for (const k of [...this.senders.keys()]) if (k.slice(k.indexOf(":") + 1) === connectionId) this.senders.delete(k);
  }

  private makeRoom(): void {
    while (this.senders.size >= MAX_SIGNAL_SENDERS) {
      let oldest: string | null = null;
      let min = Infinity;
      for (const [k, e] of this.senders) {
        if (e.lastUsed < min) {
          min = e.lastUsed;
          oldest = k;
        }
      }
      if (oldest === null) return;
      this.senders.delete(oldest);
    }
  }
}

function parsePlaintext(pt: Uint8Array): PlainSignal {
  if (pt.length === 0) throw malformed("empty plaintext");
  const typeLen = pt[0]!;
  if (pt.length < 1 + typeLen) throw malformed("type runs past the plaintext");
  const dec = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let signalType: string;
  let data: string;
  try {
    signalType = dec.decode(pt.subarray(1, 1 + typeLen));
    data = dec.decode(pt.subarray(1 + typeLen));
  } catch {
    throw malformed("type or data is not UTF-8");
  }
  if (signalType.length > MAX_SIGNAL_TYPE_LEN || !TYPE_RULE.test(signalType)) throw malformed("type breaks the signal type rule");
  return { signalType, data };
}
