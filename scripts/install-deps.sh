#!/usr/bin/env bash
# Installs the system packages the build and the tests need (Debian 12).
# Idempotent: it only calls apt-get when something is missing.
set -euo pipefail
# With --tests, also what only the test command needs: ffmpeg's ffprobe/ffmpeg read back the
# files `umbra-media record` writes (crates/umbra-media/tests/record.rs); PostgreSQL's server,
# which crates/umbra-server/tests/store.rs starts in a temporary directory of its own; Redis, which
# the cluster tests (crates/umbra-server/tests/cluster.rs) start the same way.
PKGS=(pkg-config libssl-dev python3-venv libvpx-dev libopus-dev)
if [ "${1:-}" = "--tests" ]; then PKGS+=(ffmpeg postgresql redis-server); fi
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"
apt_ensure "${PKGS[@]}"
