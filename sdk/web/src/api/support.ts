// What this browser can do for end-to-end encryption. Pure function of a global scope, so that
// tests check it against fake scopes.

export type TransformPath = "script-transform" | "encoded-streams";

export interface E2eeSupport {
  supported: boolean;
  /** The encoded-transform API to use, when supported. */
  path: TransformPath | null;
  /** Why not, for the OT_UNSUPPORTED_BROWSER message. */
  missing: string[];
}

export function detectE2eeSupport(scope: any = globalThis): E2eeSupport {
  const missing: string[] = [];
  const subtle = scope.crypto?.subtle;
  if (!subtle || typeof subtle.deriveBits !== "function" || typeof subtle.encrypt !== "function") {
    missing.push(scope.isSecureContext === false ? "WebCrypto (the page is not a secure context: serve it over HTTPS or from localhost)" : "WebCrypto");
  }
  if (typeof scope.Worker !== "function") missing.push("Web Workers");
  let path: TransformPath | null = null;
  if (typeof scope.RTCRtpScriptTransform === "function") path = "script-transform";
  else if (typeof scope.RTCRtpSender?.prototype?.createEncodedStreams === "function") path = "encoded-streams";
  else missing.push("WebRTC Encoded Transform (RTCRtpScriptTransform or createEncodedStreams)");
  return { supported: missing.length === 0, path: missing.length === 0 ? path : null, missing };
}
