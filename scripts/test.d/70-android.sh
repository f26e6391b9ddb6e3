#!/usr/bin/env bash
# Kotlin SDK (sdk/android) and iOS bindings (sdk/ios) over crates/umbra-ffi: regenerates the UniFFI
# Kotlin and Swift bindings and fails if the committed ones differ; compiles the generated C header
# and checks the Swift file's expected checksums against the library; builds the Kotlin library
# with kotlinc (npm) on OpenJDK 17 and runs its JUnit 5 tests with JNA against a real
# `umbra serve` on loopback: Kotlin publishers and subscribers with the same / a wrong / no / an
# invalid secret (frames checked by frame number, PSNR and mean luma; tones by frequency), plain
# media from a publisher that declares E2EE (StreamNotEncrypted, never a mismatch), a
# throwing listener, bad input, and interop with the Rust CLI (umbra-media) both ways.
# Installs openjdk-17-jdk-headless, libjna-java, junit5 with apt-get and kotlin-compiler with
# npm ci when missing. About two minutes after cargo has built. See sdk/android/README.md, "Tests".
set -euo pipefail
exec bash "$(dirname "$0")/../../sdk/android/run-tests.sh" "$@"
