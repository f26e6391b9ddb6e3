// SFrame cipher suites: RFC 9605 §4.5 (1-5) and the AES-256-CTR suites 6-8 of
// draft-barnes-sframe-iana-256. Suite 6 is the protocol's default.

import { E2eeError } from "./errors.js";

export type HashName = "SHA-256" | "SHA-512";

export interface CipherSuite {
  readonly id: number;
  readonly name: string;
  readonly hash: HashName;
  /** "ctr-hmac": AES-CTR + truncated HMAC; "gcm": AES-GCM. */
  readonly kind: "ctr-hmac" | "gcm";
  /** AES key length in bytes. */
  readonly aesKeyLen: 16 | 32;
  /** Nk: SFrame key length (for CTR+HMAC: the AES key, then the HMAC key of the hash's size). */
  readonly keyLen: number;
  /** Nt: tag length. */
  readonly tagLen: number;
}

export const NONCE_LEN = 12;
export const DEFAULT_SUITE_ID = 6;

function ctr(id: number, name: string, hash: HashName, tagLen: number): CipherSuite {
  const aesKeyLen = hash === "SHA-256" ? 16 : 32;
  const hashLen = hash === "SHA-256" ? 32 : 64;
  return { id, name, hash, kind: "ctr-hmac", aesKeyLen, keyLen: aesKeyLen + hashLen, tagLen };
}

const SUITES: readonly CipherSuite[] = [
  ctr(1, "AES_128_CTR_HMAC_SHA256_80", "SHA-256", 10),
  ctr(2, "AES_128_CTR_HMAC_SHA256_64", "SHA-256", 8),
  ctr(3, "AES_128_CTR_HMAC_SHA256_32", "SHA-256", 4),
  { id: 4, name: "AES_128_GCM_SHA256_128", hash: "SHA-256", kind: "gcm", aesKeyLen: 16, keyLen: 16, tagLen: 16 },
  { id: 5, name: "AES_256_GCM_SHA512_128", hash: "SHA-512", kind: "gcm", aesKeyLen: 32, keyLen: 32, tagLen: 16 },
  ctr(6, "AES_256_CTR_HMAC_SHA512_80", "SHA-512", 10),
  ctr(7, "AES_256_CTR_HMAC_SHA512_64", "SHA-512", 8),
  ctr(8, "AES_256_CTR_HMAC_SHA512_32", "SHA-512", 4),
];

export const ALL_SUITES: readonly CipherSuite[] = SUITES;

export function suiteById(id: number): CipherSuite {
  const s = SUITES.find((x) => x.id === id);
  if (!s) throw new E2eeError("UnsupportedCipherSuite", `unsupported SFrame cipher suite ${id}`);
  return s;
}
