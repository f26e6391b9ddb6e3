// Codec-aware framing, shared types (docs/e2ee-protocol.md §5).

/** The framing rule of a stream, from its negotiated codec. Both ends must agree on it. */
export type Codec = "opaque" | "vp8" | "vp9" | "h264" | "av1" | "opus";

export const ALL_CODECS: readonly Codec[] = ["opaque", "vp8", "vp9", "h264", "av1", "opus"];

/** First byte of the framing metadata: stops a frame from being reinterpreted under another codec's rule. */
export function framingId(codec: Codec): number {
  switch (codec) {
    case "opaque":
      return 0;
    case "vp8":
      return 1;
    case "vp9":
      return 2;
    case "h264":
      return 3;
    case "av1":
      return 4;
    case "opus":
      return 5;
  }
}

export function codecName(codec: Codec): string {
  return { opaque: "opaque", vp8: "VP8", vp9: "VP9", h264: "H.264", av1: "AV1", opus: "Opus" }[codec];
}

/**
 * Maps an RTP/SDP MIME type (`video/VP8`, `audio/opus`, ...) to its framing. Unknown types map to
 * opaque, which is safe for any codec whose packetizer does not read the payload.
 */
export function codecFromMimeType(mime: string): Codec {
  const sub = (mime.split("/").pop() ?? mime).toLowerCase();
  switch (sub) {
    case "vp8":
      return "vp8";
    case "vp9":
      return "vp9";
    case "h264":
      return "h264";
    case "av1":
    case "av1x":
      return "av1";
    case "opus":
      return "opus";
    default:
      return "opaque";
  }
}

/** As the encoder produced it (bodies are plaintext) or as it travels (bodies are SFrame regions). */
export type Form = "plain" | "wire";

/**
 * One piece of a frame: clear parts are copied verbatim and not authenticated; a unit has a
 * readable, authenticated head and a protected body (in wire form: after codec decoding, i.e.
 * H.264 emulation prevention removed).
 */
export type Part = { readonly clear: Uint8Array } | { readonly head: Uint8Array; readonly body: Uint8Array };

export function isUnit(p: Part): p is Extract<Part, { head: Uint8Array }> {
  return "head" in p;
}
