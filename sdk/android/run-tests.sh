#!/usr/bin/env bash
# The Kotlin SDK and the iOS bindings end to end (scripts/test.d/70-android.sh runs this):
#  1. builds the binding crate (crates/umbra-ffi: libumbra_ffi.so and uniffi-bindgen), `umbra` and
#     `umbra-media` with cargo;
#  2. regenerates the Kotlin and Swift bindings and the C header with uniffi-bindgen and fails if
#     they differ from the committed ones (UMBRA_BLESS_BINDINGS=1 writes them instead);
#  3. iOS: compiles the generated C header as C, links a probe against the library and checks that
#     every checksum the Swift file expects is what the library returns;
#  4. compiles the Kotlin library, its JUnit 5 tests and a Java example with kotlinc (npm) and
#     javac on OpenJDK 17 (skipped when the sources are unchanged since the last run);
#  5. starts `umbra serve` on loopback with a temporary data directory and a project with the E2EE
#     add-on, and runs the tests on the JVM with JNA against the real library.
# Installs openjdk-17-jdk-headless, libjna-java, junit5 (and gcc, python3, npm) with apt-get and
# kotlin-compiler with `npm ci` when missing. About two minutes once cargo has built.
# UMBRA_ANDROID_NO_BUILD=1 skips the cargo build; UMBRA_ANDROID_SERVER=path uses that `umbra`
# binary instead of building the debug one (e.g. a release build already there).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never
started=$(date +%s)

# shellcheck source=../../scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
apt_ensure javac:openjdk-17-jdk-headless gcc:gcc python3:python3 npm:npm libjna-java junit5
JNA=/usr/share/java/jna.jar
JUNIT=/usr/share/java/junit-platform-console-standalone.jar
for f in "$JNA" "$JUNIT"; do [ -f "$f" ] || { echo "missing $f"; exit 1; }; done

TOOLS=sdk/android/tools
KOTLIN_VERSION=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["packages"]["node_modules/kotlin-compiler"]["version"])' "$TOOLS/package-lock.json")
installed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$TOOLS/node_modules/kotlin-compiler/package.json" 2>/dev/null || true)
if [ "$installed" != "$KOTLIN_VERSION" ]; then
  echo "--- npm ci (kotlin-compiler $KOTLIN_VERSION)"
  (cd "$TOOLS" && npm ci --no-audit --no-fund --silent)
fi
KOTLIN_HOME=$ROOT/$TOOLS/node_modules/kotlin-compiler
KOTLINC=$KOTLIN_HOME/bin/kotlinc
STDLIB=$KOTLIN_HOME/lib/kotlin-stdlib.jar

if [ -z "${UMBRA_ANDROID_NO_BUILD:-}" ]; then
  echo "--- building libumbra_ffi, uniffi-bindgen, umbra and umbra-media"
  cargo build --locked -p umbra-ffi
  [ -n "${UMBRA_ANDROID_SERVER:-}" ] || cargo build --locked -p umbra-server --bin umbra
  cargo build --locked -p umbra-media
  # The test-only publisher that declares E2EE but sends plain media (the StreamNotEncrypted test).
  cargo build --locked -p umbra-client --features testing-plaintext-publisher --example plaintext-publisher
fi
LIB_DIR=$CARGO_TARGET_DIR/debug
LIB=$LIB_DIR/libumbra_ffi.so
[ -f "$LIB" ] || { echo "no $LIB"; exit 1; }

# shellcheck source=../../scripts/lib/suite-server.sh
source scripts/lib/suite-server.sh
suite_begin android

echo "--- regenerating the bindings (uniffi-bindgen, library mode)"
KT_DIR=sdk/android/src/generated/kotlin
SWIFT_DIR=sdk/ios/generated
BINDGEN=$CARGO_TARGET_DIR/debug/uniffi-bindgen
"$BINDGEN" generate "$LIB" --metadata-no-deps --language kotlin --no-format --out-dir "$WORK/gen/kotlin" >/dev/null
"$BINDGEN" generate "$LIB" --metadata-no-deps --language swift --no-format --out-dir "$WORK/gen/swift" >/dev/null
if [ -n "${UMBRA_BLESS_BINDINGS:-}" ]; then
  rm -rf "$KT_DIR" "$SWIFT_DIR"
  mkdir -p "$KT_DIR" "$SWIFT_DIR"
  cp -r "$WORK/gen/kotlin/." "$KT_DIR/"
  cp -r "$WORK/gen/swift/." "$SWIFT_DIR/"
  echo "bindings written to $KT_DIR and $SWIFT_DIR"
fi
stale=0
diff -r "$WORK/gen/kotlin" "$KT_DIR" >"$WORK/kotlin.diff" || stale=1
diff -r "$WORK/gen/swift" "$SWIFT_DIR" >"$WORK/swift.diff" || stale=1
if [ "$stale" -ne 0 ]; then
  head -n 40 "$WORK/kotlin.diff" "$WORK/swift.diff"
  echo "FAIL: the committed bindings differ from what uniffi-bindgen generates from crates/umbra-ffi;"
  echo "      regenerate with: UMBRA_BLESS_BINDINGS=1 bash sdk/android/run-tests.sh (then commit)"
  exit 1
fi
echo "bindings up to date"

echo "--- iOS: the C header compiles, and the library has the checksums the Swift file expects"
HEADER=$(ls "$SWIFT_DIR"/*.h)
SWIFT=$(ls "$SWIFT_DIR"/*.swift)
# Clang's nullability keywords, which gcc does not know.
NULLABILITY=(-D_Nonnull= -D_Nullable= -D_Null_unspecified=)
printf '#include "%s"\n' "$(basename "$HEADER")" | gcc -std=c11 -Wall -Wextra -Werror -fsyntax-only "${NULLABILITY[@]}" -I"$SWIFT_DIR" -x c -
python3 sdk/ios/checksum_probe.py "$SWIFT" "$(basename "$HEADER")" >"$WORK/probe.c"
gcc -std=c11 -Wall -Werror "${NULLABILITY[@]}" -I"$SWIFT_DIR" -o "$WORK/probe" "$WORK/probe.c" \
  -L"$LIB_DIR" -lumbra_ffi -Wl,-rpath,"$LIB_DIR"
"$WORK/probe"

echo "--- compiling the Kotlin SDK and its tests (kotlinc $KOTLIN_VERSION, $(javac -version 2>&1))"
SOURCES=$( (find sdk/android/src -name '*.kt' -o -name '*.java'; find sdk/android/examples -name '*.java') | LC_ALL=C sort)
HASH=$(cat $SOURCES "$TOOLS/package-lock.json" | sha256sum | cut -c1-16)
OUT=${XDG_CACHE_HOME:-$HOME/.cache}/umbra/android/$HASH
if [ ! -f "$OUT/done" ]; then
  rm -rf "$OUT"
  mkdir -p "$OUT"
  # -Werror: the library and tests compile without warnings. JAVA_OPTS keeps the compiler's heap modest
  # on two shared cores.
  export JAVA_OPTS="-Xmx1g -XX:+UseSerialGC"
  nice -n 10 "$KOTLINC" -Werror -jvm-target 17 -cp "$JNA" -d "$OUT/umbra-android.jar" \
    $(find sdk/android/src/main sdk/android/src/generated -name '*.kt')
  nice -n 10 "$KOTLINC" -Werror -jvm-target 17 -cp "$JNA:$OUT/umbra-android.jar:$JUNIT" -d "$OUT/umbra-android-tests.jar" \
    $(find sdk/android/src/test -name '*.kt')
  # The API from Java: the example compiles against the library as an app's would.
  mkdir -p "$OUT/java"
  javac -Werror -Xlint:all -d "$OUT/java" -cp "$OUT/umbra-android.jar:$STDLIB" sdk/android/examples/*.java
  touch "$OUT/done"
else
  echo "unchanged since the last run: $OUT"
fi

UMBRA=${UMBRA_ANDROID_SERVER:-$CARGO_TARGET_DIR/debug/umbra}
suite_server "$UMBRA" android-sdk

echo "--- running the JUnit 5 tests on the JVM ($(java -version 2>&1 | head -n1))"
set +e
env UMBRA_TEST_URL="$URL" UMBRA_TEST_API_KEY="$(project_field api_key)" UMBRA_TEST_API_SECRET="$(project_field api_secret)" \
  UMBRA_TEST_BIN="$UMBRA" UMBRA_TEST_DATA_DIR="$DATA" UMBRA_TEST_MEDIA_BIN="$CARGO_TARGET_DIR/debug/umbra-media" \
  UMBRA_TEST_PLAINTEXT_PUBLISHER="$CARGO_TARGET_DIR/debug/examples/plaintext-publisher" \
  timeout -k 10 400 java -Xmx512m -Djna.library.path="$LIB_DIR" -Djna.nosys=false \
  -jar "$JUNIT" --disable-banner --details=tree --fail-if-no-tests \
  -cp "$OUT/umbra-android-tests.jar:$OUT/umbra-android.jar:$JNA:$STDLIB" \
  --disable-ansi-colors --select-class io.umbra.android.E2eeTest --select-class io.umbra.android.SimulcastTest --reports-dir "$WORK/reports" 2>&1 | tee "$WORK/junit.log"
rc=${PIPESTATUS[0]}
set -e
passed=$(sed -n 's/.*\[ *\([0-9]*\) tests successful *\].*/\1/p' "$WORK/junit.log" | tail -n1)
failed=$(sed -n 's/.*\[ *\([0-9]*\) tests failed *\].*/\1/p' "$WORK/junit.log" | tail -n1)
echo "android: ${passed:-0} passed, ${failed:-0} failed"
echo "70-android took $(( $(date +%s) - started )) s"
exit "$rc"
