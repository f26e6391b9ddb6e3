// The receiving side of one stream (docs/e2ee-protocol.md §7-8): key trial and per-KID cache,
// replay window, grace period via the session's KeyRing, and the mismatch detector.

import { AUTH_FAILED } from "./aead.js";
import { FrameError } from "./errors.js";
import type { Codec } from "./framing/index.js";
import type { KeyRing } from "./keyring.js";
import { MismatchDetector, type E2eeEvent } from "./mismatch.js";
import { WireFrame } from "./protect.js";
import { ReplayWindow } from "./replay.js";
import { SframeKey } from "./sframe-key.js";

/** KIDs remembered per stream; only bounds what a hostile or buggy sender can make us hold. */
export const MAX_KIDS_PER_STREAM = 16;

export type DecryptOutcome =
  | { status: "decrypted"; frame: Uint8Array }
  | { status: "auth_failure"; kid: bigint; ctr: bigint }
  | { status: "malformed"; error: FrameError }
  | { status: "replayed"; kid: bigint; ctr: bigint }
  | { status: "no_secret" };

export interface DecryptStats {
  decrypted: number;
  authFailures: number;
  malformed: number;
  replayed: number;
}

interface KidEntry {
  epoch: number;
  key: SframeKey;
  window: ReplayWindow;
  lastUsed: number;
}

export class StreamDecryptor {
  private readonly kids = new Map<bigint, KidEntry>();
  private uses = 0;
  private readonly detector = new MismatchDetector();
  private readonly events: E2eeEvent[] = [];
  private readonly counts: DecryptStats = { decrypted: 0, authFailures: 0, malformed: 0, replayed: 0 };
  private queue: Promise<unknown> = Promise.resolve();

  constructor(public codec: Codec) {}

  get stats(): Readonly<DecryptStats> {
    return { ...this.counts };
  }

  get trackedKids(): number {
    return this.kids.size;
  }

  get isMismatched(): boolean {
    return this.detector.isMismatched;
  }

  /** Events produced so far, oldest first; each state change yields exactly one. */
  takeEvents(): E2eeEvent[] {
    return this.events.splice(0);
  }

  /**
   * Returns the original frame if `frame` authenticates under a key of `ring`. `now` (ms) drives
   * the mismatch rule and grace periods. Calls are serialized: the replay window's
   * check-then-accept must not interleave across frames.
   */
  decrypt(ring: KeyRing, frame: Uint8Array, now: number): Promise<DecryptOutcome> {
    const run = this.queue.then(() => this.decryptNow(ring, frame, now));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private emit(e: E2eeEvent | null): void {
    if (e) this.events.push(e);
  }

  private async decryptNow(ring: KeyRing, frame: Uint8Array, now: number): Promise<DecryptOutcome> {
    // A zero-byte frame carries no media and is passed on as is (§5.2).
    if (frame.length === 0) return { status: "decrypted", frame };
    if (!ring.hasSecret) return { status: "no_secret" };
    let outcome: DecryptOutcome;
    try {
      outcome = await this.tryDecrypt(ring, frame, now);
    } catch (e) {
      const error = e instanceof FrameError ? e : new FrameError("Crypto", `crypto backend failure: ${String(e)}`);
      outcome = { status: "malformed", error };
    }
    switch (outcome.status) {
      case "decrypted":
        this.counts.decrypted++;
        this.emit(this.detector.onSuccess());
        break;
      case "auth_failure":
        this.counts.authFailures++;
        this.emit(this.detector.onAuthFailure(now, outcome.kid, outcome.ctr, frame.length));
        break;
      case "malformed":
        this.counts.malformed++;
        this.emit(this.detector.onMalformed(now, outcome.error));
        break;
      case "replayed":
        // Dropped silently: counted, no event, and it does not break a run of failures.
        this.counts.replayed++;
        break;
    }
    return outcome;
  }

  private async tryDecrypt(ring: KeyRing, frame: Uint8Array, now: number): Promise<DecryptOutcome> {
    const wire = WireFrame.parse(this.codec, ring.suite, frame);
    const { kid, ctr } = wire.header;
    // Keys whose epoch left the ring (grace period over) are dropped.
    for (const [k, e] of this.kids) if (!ring.isLive(e.epoch, now)) this.kids.delete(k);
    const uses = ++this.uses;

    const entry = this.kids.get(kid);
    if (entry) {
      if (!entry.window.check(ctr)) return { status: "replayed", kid, ctr };
      const plain = await wire.open(entry.key);
      if (plain === AUTH_FAILED) return { status: "auth_failure", kid, ctr };
      entry.window.accept(ctr);
      entry.lastUsed = uses;
      return { status: "decrypted", frame: plain };
    }

    for (const epoch of ring.candidates(now)) {
      const key = await SframeKey.derive(ring.suite, epoch.baseKey, kid);
      const plain = await wire.open(key);
      if (plain === AUTH_FAILED) continue;
      const window = new ReplayWindow();
      window.accept(ctr);
      if (this.kids.size >= MAX_KIDS_PER_STREAM) {
        let lru: bigint | null = null;
        let oldest = Infinity;
        for (const [k, e] of this.kids) {
          if (e.lastUsed < oldest) {
            oldest = e.lastUsed;
            lru = k;
          }
        }
        if (lru !== null) this.kids.delete(lru);
      }
      this.kids.set(kid, { epoch: epoch.id, key, window, lastUsed: uses });
      return { status: "decrypted", frame: plain };
    }
    return { status: "auth_failure", kid, ctr };
  }
}
