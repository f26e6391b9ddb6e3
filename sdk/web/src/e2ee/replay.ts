// Per-KID sliding replay window over SFrame counters (docs/e2ee-protocol.md §7).

/** How far behind the highest counter a frame is still accepted (out-of-order delivery). */
export const REPLAY_WINDOW = 1024n;
const WORDS = 32; // 1024 bits in 32-bit words

/**
 * Remembers which counters were accepted. Callers `check` before opening a frame and `accept`
 * only after it authenticated, so forged frames never move the window.
 */
export class ReplayWindow {
  private top: bigint | null = null;
  private readonly seen = new Uint32Array(WORDS);

  get highest(): bigint | null {
    return this.top;
  }

  private static slot(ctr: bigint): [number, number] {
    const i = Number(ctr % REPLAY_WINDOW);
    return [i >>> 5, 1 << (i & 31)];
  }

  /** True if `ctr` is new and inside the window. */
  check(ctr: bigint): boolean {
    const h = this.top;
    if (h === null || ctr > h) return true;
    if (h - ctr >= REPLAY_WINDOW) return false;
    const [w, m] = ReplayWindow.slot(ctr);
    return (this.seen[w]! & m) === 0;
  }

  /** Records `ctr` as received. Only for frames that authenticated and passed `check`. */
  accept(ctr: bigint): void {
    const h = this.top;
    if (h !== null && ctr <= h) {
      // inside the window: just mark it
    } else if (h !== null && ctr - h < REPLAY_WINDOW) {
      // Slots of counters skipped over now stand for new counters: clear them.
      for (let c = h + 1n; c <= ctr; c++) {
        const [w, m] = ReplayWindow.slot(c);
        this.seen[w]! &= ~m;
      }
      this.top = ctr;
    } else {
      this.seen.fill(0);
      this.top = ctr;
    }
    const [w, m] = ReplayWindow.slot(ctr);
    this.seen[w]! |= m;
  }
}
