#!/usr/bin/env bash
# The .NET SDK end to end: builds libumbra and umbra (cargo), the SDK (Umbra.dll) and its tests
# with Mono's C# compiler, the C examples (the interop peers) and a layout probe with gcc, starts a
# real `umbra serve` on loopback with a temporary data directory and a project with the E2EE
# add-on, and runs the tests with Mono against the real libumbra.so. Everything it starts is
# stopped on exit; any failure exits non-zero. About a minute.
#
# Installs mono-mcs, mono-runtime, gcc, make and python3 with apt-get when missing (Debian 12, as
# root or with sudo). Run from anywhere: bash sdk/dotnet/run-tests.sh
# UMBRA_DOTNET_NO_BUILD=1 skips the cargo build (use the binaries already in the target dir).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never

# shellcheck source=../../scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
apt_ensure mcs:mono-mcs mono:mono-runtime gcc:gcc make:make python3:python3

if [ -z "${UMBRA_DOTNET_NO_BUILD:-}" ]; then
  echo "--- building libumbra and umbra"
  # Two commands: `--bin umbra` would also filter umbra-capi's targets (no libumbra.so).
  cargo build --locked -p umbra-capi
  cargo build --locked -p umbra-server --bin umbra
  # The test-only publisher that declares E2EE but sends plain media (the NotEncrypted test).
  cargo build --locked -p umbra-client --features testing-plaintext-publisher --example plaintext-publisher
fi
LIB_DIR="$CARGO_TARGET_DIR/debug"
UMBRA="$CARGO_TARGET_DIR/debug/umbra"
HEADER="$ROOT/crates/umbra-capi/include/umbra/otc.h"
[ -f "$LIB_DIR/libumbra.so" ] || { echo "no $LIB_DIR/libumbra.so"; exit 1; }

# shellcheck source=../../scripts/lib/suite-server.sh
source scripts/lib/suite-server.sh
suite_begin dotnet

echo "--- building Umbra.dll and the tests (mcs $(mcs --version | awk '{print $NF}'))"
BIN="$WORK/bin"
mkdir -p "$BIN"
# The same sources the netstandard2.0 project (sdk/dotnet/Umbra.csproj) compiles.
mcs -target:library -langversion:7.2 -warnaserror+ -debug -out:"$BIN/Umbra.dll" -r:System.dll -r:System.Core.dll sdk/dotnet/src/*.cs
mcs -target:exe -langversion:7.2 -warnaserror+ -debug -out:"$BIN/Umbra.Tests.exe" -r:"$BIN/Umbra.dll" -r:System.dll -r:System.Core.dll sdk/dotnet/tests/*.cs
mcs -target:exe -langversion:7.2 -warnaserror+ -out:"$BIN/quickstart.exe" -r:"$BIN/Umbra.dll" sdk/dotnet/examples/Quickstart.cs # compiled only

echo "--- layout probe (the C compiler's view of the structs the SDK declares)"
mono "$BIN/Umbra.Tests.exe" --emit-layout-probe >"$WORK/layout-probe.c"
gcc -std=c99 -Wall -Werror -I"$ROOT/crates/umbra-capi/include" -o "$WORK/layout-probe" "$WORK/layout-probe.c"
"$WORK/layout-probe" >"$WORK/layout.txt"

echo "--- building the C examples (interop peers)"
make -s -C examples/c UMBRA_LIB_DIR="$LIB_DIR" OUT="$WORK/cbin" "$WORK/cbin/publisher" "$WORK/cbin/subscriber"

suite_server "$UMBRA" dotnet-sdk

echo "--- running the tests (mono $(mono --version | head -n1 | awk '{print $5}'))"
env LD_LIBRARY_PATH="$LIB_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
  UMBRA_TEST_URL="$URL" UMBRA_TEST_API_KEY="$(project_field api_key)" UMBRA_TEST_API_SECRET="$(project_field api_secret)" \
  UMBRA_TEST_BIN="$UMBRA" UMBRA_TEST_DATA_DIR="$DATA" UMBRA_TEST_HEADER="$HEADER" \
  UMBRA_TEST_LAYOUT="$WORK/layout.txt" UMBRA_TEST_C_EXAMPLES="$WORK/cbin" \
  UMBRA_TEST_PLAINTEXT_PUBLISHER="$CARGO_TARGET_DIR/debug/examples/plaintext-publisher" \
  timeout -k 10 300 mono --debug "$BIN/Umbra.Tests.exe"
