#!/usr/bin/env bash
# C SDK (crates/umbra-capi): builds libumbra and the C examples with gcc, starts `umbra serve` on
# loopback in a temporary data directory, and runs the E2EE scenarios with a C publisher and a
# C subscriber (same secret: frames match the test pattern; different secret: mismatch; invalid
# secret: return code; no secret: ENCRYPTION_SECRET_MISSING; a Rust publisher that declares E2EE
# but sends plain media: STREAM_NOT_ENCRYPTED, never a mismatch), a late joiner of a relayed session of
# 150 connections and 120 streams (each reported exactly once, then later changes and a forced
# mute of its own stream), and a router's media_failed reaching the publisher's on_error; all
# natively and under valgrind.
# Installs gcc, make, valgrind and python3 with apt-get when missing. About 5 minutes.
# See docs/c-sdk.md, "Tests"; the scenarios are in examples/c/run-tests.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../../examples/c/run-tests.sh" "$@"
