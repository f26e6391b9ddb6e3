#!/usr/bin/env bash
# Web SDK (sdk/web): installs its npm dev dependencies from the committed lockfile (npm ci; only
# the npm registry is contacted, and only when the lockfile changed), builds the bundles and the
# .d.ts files, type-checks sources and tests (tsc --noEmit), and runs the Node tests: byte-for-byte
# against testdata/umbra-e2ee-vectors.json and the official SFrame vectors, behaviour over
# simulated time, the worker, the session against a loopback signaling server, and against a real
# `umbra serve` on ports the kernel picks (when the binary is built). Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/../../sdk/web"

if ! command -v node >/dev/null 2>&1; then
  echo "30-web-sdk: node is not installed (Node.js >= 20 is required)" >&2
  exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "30-web-sdk: Node.js >= 20 is required (found $(node --version))" >&2
  exit 1
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "installing the Web SDK's build and test dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

echo "type-checking the SDK (tsc --noEmit: the protocol types generated from crates/umbra-protocol"
echo "  make a server message type or error code that the SDK does not handle a compile error)"
npm run --silent typecheck
echo "building dist/ (esbuild bundles, tsc declarations)"
npm run --silent build
echo "type-checking sources and tests"
node node_modules/typescript/bin/tsc -p tsconfig.test.json
echo "running the Node tests"
npm test --silent
