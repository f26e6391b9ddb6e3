// The official SFrame vectors: RFC 9605 Appendix C (289 header, 6 AEAD, 5 SFrame) and the
// AES-256-CTR suites 6-8 of draft-barnes-sframe-iana-256 (3 SFrame).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AUTH_FAILED,
  bs,
  bytesToHex,
  decodeHeader,
  encodeHeader,
  encodedHeaderLen,
  hexToBytes,
  keyScheduleLabel,
  SframeKey,
  suiteById,
} from "../src/e2ee/index.js";
import { readVectors } from "./support.js";

const rfc = readVectors("sframe/rfc9605-test-vectors.json");
const ctr256 = readVectors("sframe/aes256-ctr-hmac-test-vectors.json");

test("header vectors (289)", () => {
  assert.equal(rfc.header.length, 289);
  for (const h of rfc.header) {
    const kid = BigInt(h.kid);
    const ctr = BigInt(h.ctr);
    assert.equal(bytesToHex(encodeHeader(kid, ctr)), h.encoded, `encode kid=${kid} ctr=${ctr}`);
    const encoded = hexToBytes(h.encoded);
    assert.equal(encodedHeaderLen(kid, ctr), encoded.length);
    const { header, len } = decodeHeader(encoded);
    assert.deepEqual([header.kid, header.ctr, len], [kid, ctr, encoded.length]);
    // Every strict prefix is truncated, never misread.
    for (let cut = 0; cut < encoded.length; cut++) {
      assert.throws(() => decodeHeader(encoded.subarray(0, cut)), { kind: "Truncated" });
    }
  }
});

test("AEAD vectors (6)", async () => {
  let count = 0;
  for (const group of ["aes_ctr_hmac", "aes_256_ctr_hmac"]) {
    for (const vec of rfc[group]) {
      const suite = suiteById(vec.cipher_suite);
      const nonce = hexToBytes(vec.nonce);
      // The AEAD vectors give the nonce directly: the salt equal to it and counter 0 reproduce it.
      const key = await SframeKey.fromParts(suite, hexToBytes(vec.key), nonce);
      assert.equal(bytesToHex(key.nonce(0n)), vec.nonce);
      const aad = hexToBytes(vec.aad);
      const pt = hexToBytes(vec.pt);
      const ct = hexToBytes(vec.ct);
      assert.equal(bytesToHex(await key.sealRaw(0n, aad, pt)), vec.ct, `suite ${suite.id}`);
      assert.equal(bytesToHex((await key.openRaw(0n, aad, ct)) as Uint8Array), vec.pt);
      for (let i = 0; i < ct.length; i++) {
        const bad = Uint8Array.from(ct);
        bad[i]! ^= 1;
        assert.equal(await key.openRaw(0n, aad, bad), AUTH_FAILED, `flip at ${i}`);
      }
      assert.equal(await key.openRaw(0n, new TextEncoder().encode("other aad"), ct), AUTH_FAILED);
      count++;
    }
  }
  assert.equal(count, 6);
});

test("SFrame vectors (5 RFC 9605 + 3 AES-256-CTR)", async (t) => {
  const all = [...rfc.sframe, ...ctr256.sframe_aes_256_ctr_hmac];
  assert.equal(all.length, 8);
  for (const vec of all) {
    await t.test(`suite ${vec.cipher_suite}`, async () => {
      const suite = suiteById(vec.cipher_suite);
      const kid = BigInt(vec.kid);
      const ctr = BigInt(vec.ctr);
      const baseKey = hexToBytes(vec.base_key);
      assert.equal(bytesToHex(keyScheduleLabel("key", kid, suite.id)), vec.sframe_key_label);
      assert.equal(bytesToHex(keyScheduleLabel("salt", kid, suite.id)), vec.sframe_salt_label);
      // HKDF-Extract with an empty salt is HMAC keyed with HashLen zero bytes (RFC 5869 §2.2);
      // WebCrypto's HKDF hides the PRK, so check it with HMAC directly.
      const hashLen = suite.hash === "SHA-256" ? 32 : 64;
      const zeroKey = await crypto.subtle.importKey("raw", new Uint8Array(hashLen), { name: "HMAC", hash: suite.hash }, false, ["sign"]);
      assert.equal(bytesToHex(new Uint8Array(await crypto.subtle.sign("HMAC", zeroKey, bs(baseKey)))), vec.sframe_secret);

      const key = await SframeKey.derive(suite, baseKey, kid);
      assert.equal(bytesToHex(key.salt), vec.sframe_salt, "salt");
      assert.equal(bytesToHex(key.nonce(ctr)), vec.nonce, "nonce");
      const given = await SframeKey.fromParts(suite, hexToBytes(vec.sframe_key), hexToBytes(vec.sframe_salt));
      const metadata = hexToBytes(vec.metadata);
      const pt = hexToBytes(vec.pt);
      const ct = hexToBytes(vec.ct);
      const headerLen = encodedHeaderLen(kid, ctr);
      assert.equal(vec.aad, bytesToHex(ct.subarray(0, headerLen)) + vec.metadata);
      // The derived key and the vector's key both produce the vector's ciphertext.
      assert.equal(bytesToHex(await key.encrypt(kid, ctr, metadata, pt)), vec.ct);
      assert.equal(bytesToHex(await given.encrypt(kid, ctr, metadata, pt)), vec.ct);
      const opened = await key.decrypt(metadata, ct);
      assert.notEqual(opened, AUTH_FAILED);
      const { header, plaintext } = opened as Exclude<typeof opened, typeof AUTH_FAILED>;
      assert.deepEqual([header.kid, header.ctr, bytesToHex(plaintext)], [kid, ctr, vec.pt]);
      for (let i = 0; i < ct.length; i++) {
        const bad = Uint8Array.from(ct);
        bad[i]! ^= 0x40;
        let ok = false;
        try {
          ok = (await key.decrypt(metadata, bad)) !== AUTH_FAILED;
        } catch {
          // a flipped header bit may make the header itself unreadable: also a rejection
        }
        assert.equal(ok, false, `flip at ${i}`);
      }
      assert.equal(await key.decrypt(new TextEncoder().encode("other metadata"), ct), AUTH_FAILED);
    });
  }
});
