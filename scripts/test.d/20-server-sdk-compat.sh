#!/usr/bin/env bash
# Compatibility with the official OpenTok server SDKs: installs PyPI `opentok` 3.x (in a venv)
# and npm `opentok` 2.x (npm ci, from the committed lockfile), then runs the umbra-server tests
# that drive them against a real `umbra serve` (each test starts and stops its own server on a
# loopback port). Safe to re-run: the venv and node_modules are reused when up to date.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
SDK="$ROOT/crates/umbra-server/tests/sdk"
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/umbra/sdk-venv"

stamp="$VENV/.requirements"
if [ ! -x "$VENV/bin/python" ] || ! cmp -s "$SDK/python/requirements.txt" "$stamp"; then
  echo "installing the Python opentok SDK into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$SDK/python/requirements.txt"
  cp "$SDK/python/requirements.txt" "$stamp"
fi

if [ ! -d "$SDK/node/node_modules/opentok" ] || [ "$SDK/node/package-lock.json" -nt "$SDK/node/node_modules/.package-lock.json" ]; then
  echo "installing the Node opentok SDK (npm ci)"
  (cd "$SDK/node" && npm ci --no-audit --no-fund --loglevel=error)
fi

export UMBRA_SDK_PYTHON="$VENV/bin/python"
export UMBRA_SDK_NODE_DIR="$SDK/node"
cargo test --locked -p umbra-server --test sdk_compat -- --ignored
