// The shared secret: its rule (docs/e2ee-protocol.md §2) and the PBKDF2 step to the session's
// base key (§3).

import { E2eeError } from "./errors.js";
import { bs, concatBytes } from "./bytes.js";

export const MIN_SECRET_CHARS = 8;
export const MAX_SECRET_CHARS = 256;
/** Domain-separation prefix of the PBKDF2 salt: protocol version 1. */
export const KDF_SALT_PREFIX = "umbra/e2ee/v1/";
export const PBKDF2_ITERATIONS = 600_000;
export const BASE_KEY_LEN = 32;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Whether `s` is a sequence of Unicode scalar values (no unpaired UTF-16 surrogate). */
function isWellFormed(s: string): boolean {
  const native = (s as { isWellFormed?: () => boolean }).isWellFormed;
  return typeof native === "function" ? native.call(s) : !LONE_SURROGATE.test(s);
}

export type SecretRuleViolation =
  | { reason: "NotAString" }
  | { reason: "UnpairedSurrogate" }
  | { reason: "TooShort"; chars: number }
  | { reason: "TooLong"; chars: number };

/**
 * Checks the secret rule: 8 to 256 Unicode scalar values, counted as code points
 * (`[...s].length`, not `s.length`, which counts UTF-16 units). Returns `null` when valid.
 */
export function checkSecret(secret: unknown): SecretRuleViolation | null {
  if (typeof secret !== "string") return { reason: "NotAString" };
  // TextEncoder would silently turn a lone surrogate into U+FFFD, so two different strings
  // would give the same key; such a string is not a valid secret at all.
  if (!isWellFormed(secret)) return { reason: "UnpairedSurrogate" };
  let chars = 0;
  for (const _ of secret) chars++;
  if (chars < MIN_SECRET_CHARS) return { reason: "TooShort", chars };
  if (chars > MAX_SECRET_CHARS) return { reason: "TooLong", chars };
  return null;
}

export function describeViolation(v: SecretRuleViolation): string {
  switch (v.reason) {
    case "NotAString":
      return "the encryption secret must be a string";
    case "UnpairedSurrogate":
      return "the encryption secret contains an unpaired UTF-16 surrogate and is not valid Unicode text";
    case "TooShort":
      return `the encryption secret has ${v.chars} characters; at least ${MIN_SECRET_CHARS} are required`;
    case "TooLong":
      return `the encryption secret has ${v.chars} characters; at most ${MAX_SECRET_CHARS} are allowed`;
  }
}

/** Throws `InvalidEncryptionSecret` unless `secret` satisfies the secret rule. */
export function validateSecret(secret: unknown): asserts secret is string {
  const v = checkSecret(secret);
  if (v) throw new E2eeError("InvalidEncryptionSecret", `invalid encryption secret: ${describeViolation(v)}`);
}

/**
 * `PBKDF2-HMAC-SHA256(UTF-8(secret), "umbra/e2ee/v1/" || UTF-8(session_id), 600000, 32)`.
 * Deliberately slow (a few hundred ms in a browser); runs once per secret change. The
 * `iterations` parameter exists for tests only: peers with another count never interoperate.
 */
export async function deriveBaseKey(
  secret: string,
  sessionId: string,
  iterations: number = PBKDF2_ITERATIONS,
): Promise<Uint8Array> {
  validateSecret(secret);
  const enc = new TextEncoder();
  const salt = concatBytes([enc.encode(KDF_SALT_PREFIX), enc.encode(sessionId)]);
  const password = await crypto.subtle.importKey("raw", bs(enc.encode(secret)), "PBKDF2", false, ["deriveBits"]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: bs(salt), iterations },
    password,
    BASE_KEY_LEN * 8,
  );
  return new Uint8Array(bits);
}
