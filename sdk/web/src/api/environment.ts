// Wires the public API to the browser: WebSocket, E2EE support, the worker and the media engine.
// Kept apart from Session so tests give sessions a fake environment.

import { E2eeHost, type WorkerLike } from "../media/e2ee-host.js";
import type { MediaEngineFactory } from "../media/engine.js";
import { PeerEngine } from "../media/peer-engine.js";
import type { SessionEnvironment } from "./session.js";
import type { WebSocketConstructor } from "./signaling-client.js";
import { detectE2eeSupport } from "./support.js";

let sdkBaseUrl: string | null = null;

/** Where the SDK was loaded from: the worker is next to it, and the server is its origin. */
export function setSdkBaseUrl(url: string | null): void {
  sdkBaseUrl = url;
}

export function workerUrl(): string {
  if (!sdkBaseUrl) throw new Error("the SDK's own URL is unknown: cannot locate umbra-e2ee-worker.js");
  return new URL("umbra-e2ee-worker.js", sdkBaseUrl).toString();
}

function defaultServerUrl(): string | null {
  if (sdkBaseUrl) {
    const u = new URL(sdkBaseUrl);
    if (u.protocol === "http:" || u.protocol === "https:") return u.origin;
  }
  const loc = (globalThis as { location?: Location }).location;
  return loc && (loc.protocol === "http:" || loc.protocol === "https:") ? loc.origin : null;
}

/**
 * Starts the E2EE worker. Browsers only start workers from the page's own origin; when the SDK
 * comes from another origin (a CDN, or the Umbra server while the app is elsewhere), a tiny
 * same-origin blob worker imports the real one (importScripts may load cross-origin scripts).
 * That path needs `worker-src blob:` in a Content Security Policy.
 */
export function startWorker(g: any): WorkerLike {
  const url = workerUrl();
  const pageOrigin: string | undefined = g.location?.origin;
  if (!pageOrigin || new URL(url).origin === pageOrigin) return new g.Worker(url, { name: "umbra-e2ee" }) as WorkerLike;
  const bootstrap = new g.Blob([`importScripts(${JSON.stringify(url)});`], { type: "text/javascript" });
  const blobUrl = g.URL.createObjectURL(bootstrap);
  try {
    return new g.Worker(blobUrl, { name: "umbra-e2ee" }) as WorkerLike;
  } finally {
    // Safe at once: the constructor's URL parsing captures the blob URL entry (HTML spec).
    g.URL.revokeObjectURL(blobUrl);
  }
}

function browserMediaEngine(): MediaEngineFactory | null {
  const g = globalThis as any;
  if (typeof g.RTCPeerConnection !== "function") return null;
  return (ctx) => {
    let host: E2eeHost | null = null;
    if (ctx.e2eeSuite !== null) {
      const support = detectE2eeSupport();
      // The worker is a classic script so that it loads in every browser with a plain URL.
      const worker = startWorker(g);
      host = new E2eeHost(worker, support.path ?? "script-transform", typeof g.RTCRtpScriptTransform === "function" ? g.RTCRtpScriptTransform : null);
    }
    return new PeerEngine(ctx, host);
  };
}

export function browserEnvironment(): SessionEnvironment {
  const g = globalThis as any;
  return {
    WebSocket: typeof g.WebSocket === "function" ? (g.WebSocket as WebSocketConstructor) : null,
    e2eeSupport: () => detectE2eeSupport(),
    mediaEngineFactory: browserMediaEngine(),
    defaultServerUrl,
  };
}
