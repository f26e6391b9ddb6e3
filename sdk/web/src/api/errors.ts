// Errors the public API reports. `name` is stable and OpenTok.js-compatible where OpenTok.js
// has the same error (apps switch on it); `message` is written for a person.

export type OTErrorName =
  | "OT_INVALID_ENCRYPTION_SECRET"
  | "OT_ENCRYPTION_SECRET_MISSING"
  | "OT_ENCRYPTION_SECRET_MISMATCH"
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
  | "OT_UNEXPECTED_SERVER_RESPONSE";

export class OTError extends Error {
  constructor(
    override readonly name: OTErrorName,
    message: string,
    /** The server's own error code (`token_expired`, `media_router_unavailable`, ...) when it came from the server. */
    readonly serverCode?: string,
  ) {
    super(message);
  }
}

/** Maps a signaling error code (docs/signaling.md) to the public error name. */
export function nameForServerCode(code: string): OTErrorName {
  if (code.startsWith("token_")) return "OT_AUTHENTICATION_ERROR";
  switch (code) {
    case "unknown_session":
      return "OT_INVALID_SESSION_ID";
    case "role_forbidden":
    case "not_owner":
      return "OT_PERMISSION_DENIED";
    case "e2ee_required":
    case "e2ee_cipher_suite_mismatch":
      return "OT_UNSUPPORTED_BROWSER";
    case "unknown_stream":
    case "unknown_subscription":
    case "unknown_connection":
    case "media_unknown_stream":
    case "media_unknown_target":
      return "OT_NOT_FOUND";
    case "not_connected":
      return "OT_NOT_CONNECTED";
    case "bad_request":
    case "e2ee_not_enabled":
      return "OT_INVALID_PARAMETER";
    case "media_router_unavailable":
    case "media_bad_sdp":
    case "media_router_failed":
      return "OT_STREAM_CREATE_FAILED";
    case "handshake_timeout":
      return "OT_TIMEOUT";
    default:
      return "OT_CONNECT_FAILED";
  }
}

export function fromServer(code: string, message: string): OTError {
  return new OTError(nameForServerCode(code), `${message} (server: ${code})`, code);
}
