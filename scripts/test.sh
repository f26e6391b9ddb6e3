#!/usr/bin/env bash
# The one command that runs every test of the project (README: "Run all tests").
# It installs what the tests need, builds, and runs every suite. Safe to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# A fixed target directory outside the clone: CI's fresh clones reuse the build.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never
mkdir -p "$CARGO_TARGET_DIR"

./scripts/install-deps.sh --tests

step() { printf '\n==> %s\n' "$*"; }

step "house style: cargo fmt --check, cargo clippy -D warnings"
cargo fmt --all --check
cargo clippy --locked --workspace --all-targets -- -D warnings

step "cargo build (all targets)"
cargo build --locked --workspace --all-targets

step "cargo test (workspace)"
cargo test --locked --workspace --no-fail-fast

for extra in "$ROOT"/scripts/test.d/*.sh; do
  [ -e "$extra" ] || continue
  step "$(basename "$extra")"
  bash "$extra"
done
step "all test suites passed"
