// Errors of the E2EE core. The names match the Rust core's (`crates/umbra-e2ee/src/error.rs`)
// and docs/e2ee-protocol.md §9, so every SDK reports the same thing for the same cause.

/** Why a single frame could not be processed (as opposed to: it did not authenticate). */
export type FrameErrorKind =
  | "Truncated" // the frame ends before a structure it announces
  | "Malformed" // the codec bitstream is not what the codec-aware framing expects
  | "TooLarge" // above MAX_FRAME_LEN
  | "BadHeader" // SFrame header we cannot read
  | "Crypto" // the crypto backend failed for another reason than authentication
  | "Randomness"; // the CSPRNG failed

export class FrameError extends Error {
  override readonly name = "FrameError";
  constructor(
    readonly kind: FrameErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export function malformed(codecName: string, reason: string): FrameError {
  return new FrameError("Malformed", `malformed ${codecName} frame: ${reason}`);
}

export function truncated(what: string): FrameError {
  return new FrameError("Truncated", `frame truncated: ${what}`);
}

export type E2eeErrorName =
  | "InvalidEncryptionSecret"
  | "EncryptionSecretMissing"
  | "EncryptionSecretMismatch"
  | "EncryptionInternalError"
  | "DecryptionInternalError"
  | "ReplayedFrame"
  | "UnsupportedCipherSuite";

/** An error of the E2EE core with the protocol's error name in `name`. */
export class E2eeError extends Error {
  constructor(
    override readonly name: E2eeErrorName,
    message: string,
    /** For Encryption/DecryptionInternalError: what was wrong with the frame. */
    readonly frameError?: FrameError,
  ) {
    super(message);
  }
}
