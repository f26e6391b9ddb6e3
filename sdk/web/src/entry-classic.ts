// dist/umbra.js: the SDK as a classic script defining the global `OT`, as OpenTok.js does. The
// worker is found next to this script (document.currentScript is only set while it runs).
import { setSdkBaseUrl } from "./api/environment.js";
import { OT } from "./index.js";

const script = typeof document !== "undefined" ? (document.currentScript as HTMLScriptElement | null) : null;
setSdkBaseUrl(script?.src ?? null);
(globalThis as { OT?: typeof OT }).OT = OT;
