#!/usr/bin/env bash
# Installs the system packages the build and the tests need (Debian 12).
# Idempotent: it only calls apt-get when something is missing.
set -euo pipefail
# With --tests, also what only the test command needs: ffmpeg's ffprobe/ffmpeg read back the
# files `umbra-media record` writes (crates/umbra-media/tests/record.rs); PostgreSQL's server,
# which crates/umbra-server/tests/store.rs starts in a temporary directory of its own.
PKGS=(pkg-config libssl-dev python3-venv libvpx-dev libopus-dev)
if [ "${1:-}" = "--tests" ]; then PKGS+=(ffmpeg postgresql); fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
