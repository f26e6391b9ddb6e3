#!/usr/bin/env bash
# The React Native SDK end to end (scripts/test.d/80-react-native.sh runs this):
#  1. builds the Node addon (crates/umbra-node: the native-module interface over umbra-ffi, i.e.
#     the real Rust core) and `umbra` with cargo, in the shared target directory;
#  2. `npm ci` (react-native 0.86, jest, react-test-renderer, typescript) when the lock file
#     changed since the last install, then type-checks the package with tsc;
#  3. starts `umbra serve` on loopback with a temporary data directory and a project with the
#     E2EE add-on (scripts/lib/suite-server.sh), and runs the jest tests with the addon as the
#     native module.
# Installs nodejs/npm (and python3) with apt-get when missing. About a minute once cargo has built.
# UMBRA_RN_NO_BUILD=1 skips the cargo build.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never
started=$(date +%s)

# shellcheck source=../../scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
apt_ensure node:nodejs npm:npm python3:python3

# React Native 0.86 needs Node.js 20.19.4 or later (the machine image has 20.x; Debian 12's own
# nodejs is 18, too old): say so instead of failing somewhere inside jest.
node -e 'const [a, b, c] = process.versions.node.split(".").map(Number);
  process.exit(a > 20 || (a === 20 && (b > 19 || (b === 19 && c >= 4))) ? 0 : 1)' ||
  { echo "80-react-native: Node.js >= 20.19.4 is required (found $(node --version))" >&2; exit 1; }

if [ -z "${UMBRA_RN_NO_BUILD:-}" ]; then
  echo "--- building the Node addon (umbra-node) and umbra"
  cargo build --locked -p umbra-node
  cargo build --locked -p umbra-server --bin umbra
fi

PKG=sdk/react-native
STAMP=$PKG/node_modules/.umbra-lock-sha256
LOCK_SUM=$(sha256sum "$PKG/package-lock.json" | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null || true)" != "$LOCK_SUM" ]; then
  echo "--- npm ci"
  (cd "$PKG" && npm ci --no-audit --no-fund --silent)
  echo "$LOCK_SUM" >"$STAMP"
fi

echo "--- tsc (the package and its tests type-check)"
(cd "$PKG" && ./node_modules/.bin/tsc --noEmit -p .)

# shellcheck source=../../scripts/lib/suite-server.sh
source scripts/lib/suite-server.sh
suite_begin react-native

# Private copies: other checkouts rebuild the shared target directory's binaries concurrently.
cp "$CARGO_TARGET_DIR/debug/libumbra_node.so" "$WORK/umbra_node.node"
cp "$CARGO_TARGET_DIR/debug/umbra" "$WORK/umbra"
suite_server "$WORK/umbra" react-native-sdk

echo "--- jest (react-native $(node -p "require('./$PKG/node_modules/react-native/package.json').version"), node $(node --version))"
set +e
(cd "$PKG" && env UMBRA_NODE_ADDON="$WORK/umbra_node.node" UMBRA_TEST_URL="$URL" \
  UMBRA_TEST_API_KEY="$(project_field api_key)" UMBRA_TEST_API_SECRET="$(project_field api_secret)" \
  UMBRA_TEST_BIN="$WORK/umbra" UMBRA_TEST_DATA_DIR="$DATA" \
  timeout -k 10 300 ./node_modules/.bin/jest --runInBand --ci --verbose 2>&1) | tee "$WORK/jest.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/^Tests: .* \([0-9]*\) passed.*/\1/p' "$WORK/jest.log" | tail -n1)
failed=$(sed -n 's/^Tests: *\([0-9]*\) failed.*/\1/p' "$WORK/jest.log" | tail -n1)
echo "react-native: ${passed:-0} passed, ${failed:-0} failed"
echo "80-react-native took $(( $(date +%s) - started )) s"
exit "$rc"
