// Builds the SDK bundles (dist/); with --tests, the Node test tree (build/); with
// --browser-test-tools, test-browser/build/crowd.mjs.
//   dist/umbra.mjs            ESM, `import OT from ".../umbra.mjs"`
//   dist/umbra.js             classic script, defines the global `OT` (like OpenTok.js)
//   dist/umbra-e2ee-worker.js the encoded-transform worker (loaded by the two above)
//   dist/types/               .d.ts files (tsc --emitDeclarationOnly)
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readdirSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";

const tests = process.argv.includes("--tests");
// The protocol-level participants of the real-browser tests (test/crowd.ts, typed by the generated
// protocol), as one ES module for test-browser/run.mjs; `ws` stays an import (sdk/web/node_modules).
const browserTestTools = process.argv.includes("--browser-test-tools");
const common = { bundle: true, target: ["es2022", "chrome120", "firefox120", "safari17"], sourcemap: true, legalComments: "none", logLevel: "warning" };

function filesUnder(dir, ext) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? filesUnder(p, ext) : p.endsWith(ext) ? [p] : [];
  });
}

if (browserTestTools) {
  await build({
    entryPoints: ["test/crowd.ts"],
    outfile: "test-browser/build/crowd.mjs",
    bundle: true,
    packages: "external",
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
} else if (tests) {
  // Tests run the sources, not the bundles: one transpiled file per source file.
  rmSync("build", { recursive: true, force: true });
  await build({
    entryPoints: [...filesUnder("src", ".ts"), ...filesUnder("test", ".ts")],
    outdir: "build",
    outbase: ".",
    format: "esm",
    platform: "node",
    target: "node20",
    sourcemap: "inline",
    logLevel: "warning",
  });
} else {
  rmSync("dist", { recursive: true, force: true });
  await Promise.all([
    build({ ...common, entryPoints: ["src/entry-esm.ts"], outfile: "dist/umbra.mjs", format: "esm" }),
    build({ ...common, entryPoints: ["src/entry-classic.ts"], outfile: "dist/umbra.js", format: "iife" }),
    build({ ...common, entryPoints: ["src/worker/worker.ts"], outfile: "dist/umbra-e2ee-worker.js", format: "iife" }),
  ]);
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json"], { stdio: "inherit" });
}
