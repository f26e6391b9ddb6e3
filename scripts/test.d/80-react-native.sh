#!/usr/bin/env bash
# React Native SDK (sdk/react-native): builds the Node addon crates/umbra-node (the native-module
# interface over the real Rust core), installs the package with npm ci (react-native 0.86, jest,
# react-test-renderer), type-checks it, and runs its jest tests against a real `umbra serve` on
# loopback: OTSession/OTPublisher/OTSubscriber with a secret (test-pattern frames decrypted and
# decoded), an encryptionSecret prop change (one mismatch, then a match), and missing/invalid
# secrets (the documented errors). About a minute after cargo has built. See
# sdk/react-native/README.md, "Tests"; the steps are in sdk/react-native/run-tests.sh.
set -euo pipefail
exec bash "$(dirname "$0")/../../sdk/react-native/run-tests.sh" "$@"
