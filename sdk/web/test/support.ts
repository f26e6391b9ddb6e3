// Shared test helpers: locating testdata/ and reading vector files whose integers may exceed 2^53.

import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's testdata/ (tests run from sdk/web/build/test/). */
export const TESTDATA = process.env.UMBRA_TESTDATA ?? resolve(dirname(fileURLToPath(import.meta.url)), "../../../../testdata");

/**
 * JSON.parse, but every integer of 16 or more digits is kept as a string: the official SFrame
 * header vectors hold KIDs up to 2^64-1, which a JavaScript number cannot represent.
 */
export function readVectors(relPath: string): any {
  const text = readFileSync(join(TESTDATA, relPath), "utf8");
  return JSON.parse(text.replace(/([:\[,]\s*)(\d{16,})(?=\s*[,\]}])/g, '$1"$2"'));
}

export function big(v: string | number): bigint {
  return BigInt(v);
}
