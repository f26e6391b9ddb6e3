#!/usr/bin/env bash
# Web SDK in real browsers: Debian chromium (playwright-core) and firefox-esr (puppeteer-core over
# WebDriver BiDi) with fake camera and microphone, against `umbra serve` and its media router,
# inside a private network namespace (veth 10.99.0.1/24) and PID namespace: codecs VP8/VP9/H.264/
# AV1 with picture checks, secret mismatch/match, secret errors, Firefox <-> Chromium, browser <->
# native SDK (VP8, and VP9 / H.264 both ways in native-codecs.mjs), a native publisher declaring E2EE but sending plain media (streamNotEncrypted, not a
# mismatch) against an honest one with another secret (a mismatch, never that), audio, a late
# joiner of a relayed session of 150 connections and 120 streams, the demo app (screenshots in
# .artifacts/browser/). Installs chromium, firefox-esr and iproute2 with apt-get when missing. See sdk/web/README.md, "Real-browser tests".
set -euo pipefail
exec "$(dirname "$0")/../../sdk/web/test-browser/run.sh" "$@"
