// Entry point of dist/umbra-e2ee-worker.js: the dedicated worker that encrypts and decrypts
// encoded frames for one session. Both browser APIs lead here:
// - RTCRtpScriptTransform (Chromium >= 141, Firefox, Safari): the browser fires `rtctransform`
//   in this worker with a transformer whose options name the transform;
// - createEncodedStreams (older Chromium): the page transfers the streams in a message.

import type { ScriptTransformer } from "./encoded-frame.js";
import type { FromWorker, ToWorker } from "./protocol.js";
import { WorkerCore } from "./worker-core.js";

interface WorkerScope {
  postMessage(message: FromWorker): void;
  addEventListener(type: "message", listener: (e: MessageEvent<ToWorker>) => void): void;
  addEventListener(type: "rtctransform", listener: (e: Event & { transformer: ScriptTransformer }) => void): void;
}

const scope = globalThis as unknown as WorkerScope;
const core = new WorkerCore({
  now: () => performance.now(),
  post: (m) => scope.postMessage(m),
});

scope.addEventListener("message", (e) => {
  void core.handleMessage(e.data);
});

scope.addEventListener("rtctransform", (e) => {
  try {
    core.attachScriptTransformer(e.transformer);
  } catch (err) {
    const options = e.transformer.options as { transformId?: unknown } | undefined;
    scope.postMessage({
      type: "transformError",
      transformId: typeof options?.transformId === "string" ? options.transformId : "",
      message: err instanceof Error ? err.message : String(err),
    });
  }
});
