#!/usr/bin/env bash
# Real-browser tests of the Web SDK (chromium via playwright-core, firefox-esr via puppeteer-core)
# against `umbra serve`, all inside a fresh network namespace with a veth pair carrying
# 10.99.0.1/24 (Chromium gathers no loopback ICE candidates; nothing leaves the machine).
# Usage: sdk/web/test-browser/run.sh [--only test,test] [--skip test,test]
set -euo pipefail
cd "$(dirname "$0")/../../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export UMBRA_BT_ARTIFACTS="${UMBRA_BT_ARTIFACTS:-$ROOT/.artifacts/browser}"

need=()
command -v chromium >/dev/null || need+=(chromium)
command -v firefox-esr >/dev/null || need+=(firefox-esr)
command -v ip >/dev/null || need+=(iproute2)
command -v unshare >/dev/null || need+=(util-linux)
# The cluster-failover test runs its own PostgreSQL and Redis inside the namespace.
command -v redis-server >/dev/null || need+=(redis-server)
[ -d /usr/lib/postgresql ] || need+=(postgresql)
if [ "${#need[@]}" -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" fonts-dejavu-core >/dev/null
fi

echo "==> building the Web SDK and umbra"
(cd sdk/web && { [ -d node_modules/esbuild ] || npm ci --no-audit --no-fund --loglevel=error; } && npm run --silent build && node build.mjs --browser-test-tools)
(cd sdk/web/test-browser && if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error; fi)
cargo build --locked --quiet -p umbra-server --bin umbra
# The native SDK's CLI (publish/subscribe), for the browser <-> native tests: its own binary, the
# server holds no codecs or frame crypto.
cargo build --locked --quiet -p umbra-media
# The TEST-ONLY lying publisher (declares E2EE, sends plain media) for plaintext-native-to-*: only
# with its cargo feature, in a cargo command of its own.
cargo build --locked --quiet -p umbra-client --features testing-plaintext-publisher --example plaintext-publisher
# Private copies: the shared target directory may be rebuilt by someone else meanwhile.
BT_BIN_DIR="$(mktemp -d)"
cp "$CARGO_TARGET_DIR/debug/umbra" "$BT_BIN_DIR/umbra"
cp "$CARGO_TARGET_DIR/debug/umbra-media" "$BT_BIN_DIR/umbra-media"
cp "$CARGO_TARGET_DIR/debug/examples/plaintext-publisher" "$BT_BIN_DIR/plaintext-publisher"
export UMBRA_BIN="$BT_BIN_DIR/umbra"
export UMBRA_MEDIA_BIN="$BT_BIN_DIR/umbra-media"
export UMBRA_PLAINTEXT_PUB="$BT_BIN_DIR/plaintext-publisher"
# The C SDK's example subscriber, for the browser -> C test (issue 6).
cargo build --locked --quiet -p umbra-capi
# Linked against a private copy of libumbra.so too (the programs find it by rpath at run time).
mkdir -p "$BT_BIN_DIR/lib" && cp "$CARGO_TARGET_DIR/debug/libumbra.so" "$BT_BIN_DIR/lib/"
make --quiet -C examples/c OUT="$BT_BIN_DIR/c" UMBRA_LIB_DIR="$BT_BIN_DIR/lib" "$BT_BIN_DIR/c/subscriber" "$BT_BIN_DIR/c/signals"
export UMBRA_C_SUBSCRIBER="$BT_BIN_DIR/c/subscriber"
# The C SDK's signals example, for the browser <-> C encrypted-signal test (issue 18).
export UMBRA_C_SIGNALS="$BT_BIN_DIR/c/signals"
"$UMBRA_BIN" serve --help | grep -q -- --demo || { echo "umbra serve has no --demo: stale binary?" >&2; exit 1; }

rm -rf "$UMBRA_BT_ARTIFACTS"
mkdir -p "$UMBRA_BT_ARTIFACTS"
export UMBRA_BT_ADDR=10.99.0.1
# A new network namespace (only lo and the veth pair inside it) and a new PID namespace: when
# the inner shell ends, the kernel ends every process left in it (server, browsers), and the
# network namespace goes with them. Without root, a user namespace provides the capabilities.
NS=(unshare --net --pid --fork --mount-proc)
if ! "${NS[@]}" true 2>/dev/null; then NS=(unshare --user --map-root-user --net --pid --fork --mount-proc); fi
exec "${NS[@]}" -- bash -c '
  set -euo pipefail
  ip link set lo up
  ip link add umbra0 type veth peer name umbra1
  ip addr add "$UMBRA_BT_ADDR/24" dev umbra0
  ip link set umbra0 up
  ip link set umbra1 up
  cd sdk/web/test-browser
  export HOME="$(mktemp -d)"   # browsers write profiles and caches here
  trap "rm -rf \"\$HOME\" \"\$(dirname \"\$UMBRA_BIN\")\"" EXIT
  timeout --kill-after=10 "${UMBRA_BT_TIMEOUT:-540}" node run.mjs "$@"
' umbra-browser-tests "$@"
