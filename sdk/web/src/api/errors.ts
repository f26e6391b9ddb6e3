// Errors the public API reports. `name` is stable and OpenTok.js-compatible where OpenTok.js
// has the same error (apps switch on it); `message` is written for a person.

import { ERROR_CODES, type ErrorCode } from "./signaling-types.js";

export type OTErrorName =
  | "OT_INVALID_ENCRYPTION_SECRET"
  | "OT_ENCRYPTION_SECRET_MISSING"
  | "OT_ENCRYPTION_SECRET_MISMATCH"
  /** A subscriber's publisher declares end-to-end encryption but sends unencrypted media. */
  | "OT_STREAM_NOT_ENCRYPTED"
  | "OT_UNSUPPORTED_BROWSER"
  | "OT_AUTHENTICATION_ERROR"
  | "OT_INVALID_SESSION_ID"
  | "OT_CONNECT_FAILED"
  | "OT_NOT_CONNECTED"
  | "OT_INVALID_PARAMETER"
  | "OT_PERMISSION_DENIED"
  | "OT_NOT_FOUND"
  | "OT_TIMEOUT"
  | "OT_STREAM_CREATE_FAILED"
  | "OT_MEDIA_ERROR"
  | "OT_ENCRYPTION_ERROR"
  | "OT_DECRYPTION_ERROR"
  | "OT_UNEXPECTED_SERVER_RESPONSE"
  | "OT_CONNECTION_LIMIT_EXCEEDED"
  | "OT_RATE_LIMIT_EXCEEDED";

export class OTError extends Error {
  constructor(
    override readonly name: OTErrorName,
    message: string,
    /** The server's own error code (`token_expired`, `media_router_unavailable`, ...) when it came from the server. */
    readonly serverCode?: ErrorCode,
  ) {
    super(message);
  }
}

/**
 * The public name of every error code the server sends (docs/signaling.md). A `Record` over the
 * generated `ErrorCode`: a code added to crates/umbra-protocol fails `tsc` until it is mapped here.
 */
const NAME_BY_CODE: Record<ErrorCode, OTErrorName> = {
  // The token was refused: OpenTok.js reports all of these as an authentication error (1004).
  token_missing: "OT_AUTHENTICATION_ERROR",
  token_unknown_format: "OT_AUTHENTICATION_ERROR",
  token_malformed: "OT_AUTHENTICATION_ERROR",
  token_unsupported_algorithm: "OT_AUTHENTICATION_ERROR",
  token_unknown_project: "OT_AUTHENTICATION_ERROR",
  token_forged: "OT_AUTHENTICATION_ERROR",
  token_expired: "OT_AUTHENTICATION_ERROR",
  token_missing_expiry: "OT_AUTHENTICATION_ERROR",
  token_wrong_scope: "OT_AUTHENTICATION_ERROR",
  token_invalid_role: "OT_AUTHENTICATION_ERROR",
  token_missing_session: "OT_AUTHENTICATION_ERROR",
  token_wrong_session: "OT_AUTHENTICATION_ERROR",
  token_wrong_project: "OT_AUTHENTICATION_ERROR",
  token_connection_data_too_long: "OT_AUTHENTICATION_ERROR",
  token_lifetime_too_long: "OT_AUTHENTICATION_ERROR",
  unknown_session: "OT_INVALID_SESSION_ID",
  // Refusals of the handshake that a new connect will not fix either.
  unsupported_version: "OT_CONNECT_FAILED",
  handshake_timeout: "OT_TIMEOUT",
  // A resume the server cannot honour: the SDK gives up on the connection (sessionDisconnected).
  resume_unknown_connection: "OT_CONNECT_FAILED",
  resume_bad_token: "OT_CONNECT_FAILED",
  resume_gap: "OT_CONNECT_FAILED",
  resume_bad_seq: "OT_CONNECT_FAILED",
  bad_request: "OT_INVALID_PARAMETER",
  not_connected: "OT_NOT_CONNECTED",
  already_connected: "OT_CONNECT_FAILED",
  role_forbidden: "OT_PERMISSION_DENIED",
  not_owner: "OT_PERMISSION_DENIED",
  // The server says this client does not encrypt as the session requires: this SDK always
  // declares the session's suite, so it means a client that cannot (OpenTok.js's wording).
  e2ee_required: "OT_UNSUPPORTED_BROWSER",
  e2ee_cipher_suite_mismatch: "OT_UNSUPPORTED_BROWSER",
  e2ee_not_enabled: "OT_INVALID_PARAMETER",
  unknown_stream: "OT_NOT_FOUND",
  unknown_subscription: "OT_NOT_FOUND",
  unknown_connection: "OT_NOT_FOUND",
  media_unknown_stream: "OT_NOT_FOUND",
  media_unknown_target: "OT_NOT_FOUND",
  media_router_unavailable: "OT_STREAM_CREATE_FAILED",
  media_bad_sdp: "OT_STREAM_CREATE_FAILED",
  media_router_failed: "OT_STREAM_CREATE_FAILED",
  // A server limit (docs/signaling.md § Limits), with OpenTok.js's names where it has them.
  session_full: "OT_CONNECTION_LIMIT_EXCEEDED",
  too_many_token_connections: "OT_CONNECTION_LIMIT_EXCEEDED",
  too_many_streams: "OT_STREAM_CREATE_FAILED",
  too_many_session_streams: "OT_STREAM_CREATE_FAILED",
  too_many_subscriptions: "OT_PERMISSION_DENIED",
  signal_rate_limited: "OT_RATE_LIMIT_EXCEEDED",
};

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** Whether a wire `code` is one this SDK knows (a newer server may send others). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && KNOWN_CODES.has(code);
}

/** Maps a signaling error code (docs/signaling.md) to the public error name. */
export function nameForServerCode(code: ErrorCode): OTErrorName {
  return NAME_BY_CODE[code];
}

/**
 * The OTError for a server `error`. A code this SDK does not know (from a newer server) still
 * fails the call, as OT_UNEXPECTED_SERVER_RESPONSE with the code in the message.
 */
export function fromServer(code: unknown, message: string): OTError {
  if (!isErrorCode(code)) return new OTError("OT_UNEXPECTED_SERVER_RESPONSE", `${message} (server: ${String(code)})`);
  return new OTError(nameForServerCode(code), `${message} (server: ${code})`, code);
}
