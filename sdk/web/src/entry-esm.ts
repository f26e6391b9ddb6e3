// dist/umbra.mjs: the SDK as an ES module. The worker is found next to this file.
import { setSdkBaseUrl } from "./api/environment.js";

setSdkBaseUrl(import.meta.url);

export * from "./index.js";
export { default } from "./index.js";
