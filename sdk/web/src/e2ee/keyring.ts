// The receiver's secrets (docs/e2ee-protocol.md §7): the current base key and, for a grace
// period after a change, the previous one. One ring per session, shared by its received streams.
// Time is passed in (milliseconds on any monotonic clock) so behaviour over time is testable.

import { constantTimeEqual } from "./bytes.js";
import type { CipherSuite } from "./suite.js";

/** How long the previous secret still decrypts after a change: frames in flight, slow senders. */
export const DEFAULT_GRACE_PERIOD_MS = 5000;

export interface Epoch {
  readonly id: number;
  readonly baseKey: Uint8Array;
}

export class KeyRing {
  private current: Epoch | null = null;
  private previous: { epoch: Epoch; until: number } | null = null;
  private nextId = 1;

  constructor(
    readonly suite: CipherSuite,
    readonly gracePeriodMs: number = DEFAULT_GRACE_PERIOD_MS,
  ) {}

  get hasSecret(): boolean {
    return this.current !== null;
  }

  /**
   * Makes `baseKey` current; the former current key stays usable until `now + grace`. Setting
   * the key that is already current changes nothing. Returns whether anything changed.
   */
  setBaseKey(baseKey: Uint8Array, now: number): boolean {
    if (this.current && constantTimeEqual(this.current.baseKey, baseKey)) return false;
    const old = this.current;
    this.current = { id: this.nextId++, baseKey: Uint8Array.from(baseKey) };
    if (old) this.previous = { epoch: old, until: now + this.gracePeriodMs };
    return true;
  }

  /** Current first, then the previous one while its grace period lasts. */
  candidates(now: number): Epoch[] {
    const out: Epoch[] = [];
    if (this.current) out.push(this.current);
    if (this.previous && now < this.previous.until) out.push(this.previous.epoch);
    return out;
  }

  /** Whether keys derived from epoch `id` may still be used. */
  isLive(id: number, now: number): boolean {
    return this.candidates(now).some((e) => e.id === id);
  }
}
