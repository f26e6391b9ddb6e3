// The mismatch rule of docs/e2ee-protocol.md §8: per received stream, turns per-frame outcomes
// into the few events an application should see (one per state change, not one per frame).
//
// A run of frames that do not decrypt is either a sender with another secret (mismatch) or a
// sender that does not encrypt at all (not encrypted). The clear SFrame headers tell them apart
// without a key: an encrypter writes one KID per secret epoch and a counter that grows by one per
// frame; plain media read as SFrame jumps between random KIDs and counters, or does not parse.
// The transport may hand over the same frame more than once (browsers' receive transforms got one
// frame up to 26 times as RTX copies of its packets arrived); a copy says nothing about the sender,
// so it is recognised (same KID, counter and length as a failure of the run) and skipped: counted,
// it would read as a counter that did not grow.
// Memory per stream is bounded: the last RUN_HISTORY headers of the current run.

import type { FrameError } from "./errors.js";

/** A mismatch is reported once at least this many frames in a row failed authentication... */
export const MISMATCH_MIN_FRAMES = 10;
/** ...over at least this long, so one burst of corrupted packets is not a mismatch. */
export const MISMATCH_MIN_DURATION_MS = 500;
/** At most one DecryptionInternalError event per this interval per stream. */
export const MALFORMED_EVENT_INTERVAL_MS = 10_000;
/** Headers of the current run of failures kept to judge whether they come from an encrypter. */
export const RUN_HISTORY = 32;
/** An encrypting sender changes KID only when its secret changes: a run spans at most two. */
const MAX_COHERENT_KIDS = 2;

export type E2eeEvent =
  | { type: "EncryptionSecretMismatch" }
  | { type: "EncryptionSecretMatch" }
  | { type: "StreamNotEncrypted" }
  | { type: "DecryptionInternalError"; error: FrameError };

/** What identifies a failed frame: its clear header and its length. */
interface Failure {
  kid: bigint;
  ctr: bigint;
  length: number;
}

export class MismatchDetector {
  private authFailures = 0;
  private malformed = 0;
  private first: number | null = null;
  /** The latest authentication failures of the run, oldest first. */
  private headers: Failure[] = [];
  /** A mismatch or not-encrypted report stands until a frame decrypts. */
  private reported = false;
  private lastMalformedEvent: number | null = null;

  /** True while a mismatch (or a not-encrypted stream) is reported and no frame has authenticated since. */
  get isMismatched(): boolean {
    return this.reported;
  }

  /**
   * A frame of `length` bytes (as received) with this SFrame header parsed but did not authenticate
   * under any key we hold. A frame with the same KID, counter and length as one of the run's last
   * RUN_HISTORY failures is a copy of it: like a replayed frame, it neither counts nor breaks the
   * run. The length tells copies from distinct plain frames that happen to read as the same header,
   * which are evidence of a sender that does not encrypt and must count.
   */
  onAuthFailure(now: number, kid: bigint, ctr: bigint, length: number): E2eeEvent | null {
    if (this.headers.some((h) => h.kid === kid && h.ctr === ctr && h.length === length)) return null;
    this.authFailures++;
    if (this.first === null) this.first = now;
    if (this.headers.length === RUN_HISTORY) this.headers.shift();
    this.headers.push({ kid, ctr, length });
    return this.judge(now);
  }

  onSuccess(): E2eeEvent | null {
    this.authFailures = 0;
    this.malformed = 0;
    this.first = null;
    this.headers = [];
    if (this.reported) {
      this.reported = false;
      return { type: "EncryptionSecretMatch" };
    }
    return null;
  }

  /**
   * A frame could not be taken apart. A few say nothing about the secret (they neither count as
   * authentication failures nor break a run); a run made mostly of them is a sender that does not encrypt.
   */
  onMalformed(now: number, error: FrameError): E2eeEvent | null {
    this.malformed++;
    if (this.first === null) this.first = now;
    const verdict = this.judge(now);
    if (verdict) return verdict;
    if (this.lastMalformedEvent === null || now - this.lastMalformedEvent >= MALFORMED_EVENT_INTERVAL_MS) {
      this.lastMalformedEvent = now;
      return { type: "DecryptionInternalError", error };
    }
    return null;
  }

  private judge(now: number): E2eeEvent | null {
    if (this.reported || this.first === null || now - this.first < MISMATCH_MIN_DURATION_MS) return null;
    let event: E2eeEvent | null = null;
    if (this.coherent()) {
      if (this.authFailures >= MISMATCH_MIN_FRAMES) event = { type: "EncryptionSecretMismatch" };
    } else if (this.authFailures + this.malformed >= MISMATCH_MIN_FRAMES) {
      event = { type: "StreamNotEncrypted" };
    }
    this.reported = event !== null;
    return event;
  }

  /** Few malformed frames, at most two KIDs, counters mostly increasing within a KID. */
  private coherent(): boolean {
    if (this.malformed * 5 > this.authFailures + this.malformed) return false;
    const kids = new Set(this.headers.map((h) => h.kid));
    if (kids.size > MAX_COHERENT_KIDS) return false;
    let pairs = 0;
    let increasing = 0;
    for (const kid of kids) {
      const ctrs = this.headers.filter((h) => h.kid === kid).map((h) => h.ctr);
      for (let i = 1; i < ctrs.length; i++) {
        pairs++;
        if (ctrs[i]! > ctrs[i - 1]!) increasing++;
      }
    }
    return pairs < 4 || increasing * 4 >= pairs * 3;
  }
}
