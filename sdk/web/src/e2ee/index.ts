// Umbra's end-to-end encryption core in TypeScript on WebCrypto: docs/e2ee-protocol.md.
// Sans-IO: no clocks (time is passed in), no DOM; runs in windows, workers and Node >= 20.

export * from "./bytes.js";
export * from "./errors.js";
export * from "./secret.js";
export * from "./suite.js";
export * from "./header.js";
export { Aead, AUTH_FAILED, type AuthFailed } from "./aead.js";
export { SframeKey, keyScheduleLabel } from "./sframe-key.js";
export * from "./framing/index.js";
export { sealFrame, openFrame, WireFrame, MAX_FRAME_LEN } from "./protect.js";
export * from "./replay.js";
export * from "./keyring.js";
export * from "./mismatch.js";
export { FrameEncryptor, randomKid } from "./encryptor.js";
export * from "./decryptor.js";
export * from "./signal.js";
