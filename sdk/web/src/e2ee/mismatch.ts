// The mismatch rule of docs/e2ee-protocol.md §8: per received stream, turns per-frame outcomes
// into the few events an application should see (one per state change, not one per frame).

import type { FrameError } from "./errors.js";

/** A mismatch is reported once at least this many frames in a row failed authentication... */
export const MISMATCH_MIN_FRAMES = 10;
/** ...over at least this long, so one burst of corrupted packets is not a mismatch. */
export const MISMATCH_MIN_DURATION_MS = 500;
/** At most one DecryptionInternalError event per this interval per stream. */
export const MALFORMED_EVENT_INTERVAL_MS = 10_000;

export type E2eeEvent =
  | { type: "EncryptionSecretMismatch" }
  | { type: "EncryptionSecretMatch" }
  | { type: "DecryptionInternalError"; error: FrameError };

export class MismatchDetector {
  private consecutiveFailures = 0;
  private firstFailure: number | null = null;
  private mismatched = false;
  private lastMalformedEvent: number | null = null;

  /** True while a mismatch is reported and no frame has authenticated since. */
  get isMismatched(): boolean {
    return this.mismatched;
  }

  onAuthFailure(now: number): E2eeEvent | null {
    this.consecutiveFailures++;
    if (this.firstFailure === null) this.firstFailure = now;
    if (
      !this.mismatched &&
      this.consecutiveFailures >= MISMATCH_MIN_FRAMES &&
      now - this.firstFailure >= MISMATCH_MIN_DURATION_MS
    ) {
      this.mismatched = true;
      return { type: "EncryptionSecretMismatch" };
    }
    return null;
  }

  onSuccess(): E2eeEvent | null {
    this.consecutiveFailures = 0;
    this.firstFailure = null;
    if (this.mismatched) {
      this.mismatched = false;
      return { type: "EncryptionSecretMatch" };
    }
    return null;
  }

  /** Malformed frames say nothing about the secret: they neither count as failures nor break a run. */
  onMalformed(now: number, error: FrameError): E2eeEvent | null {
    if (this.lastMalformedEvent === null || now - this.lastMalformedEvent >= MALFORMED_EVENT_INTERVAL_MS) {
      this.lastMalformedEvent = now;
      return { type: "DecryptionInternalError", error };
    }
    return null;
  }
}
