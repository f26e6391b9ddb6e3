#!/usr/bin/env bash
# The C SDK end to end: builds libumbra (cargo build -p umbra-capi) and the C examples (gcc,
# make), starts a real `umbra serve` on loopback with a temporary data directory, and runs the
# scenarios of issue 6 with the C publisher and subscriber (and a lying Rust publisher for
# "stream not encrypted"), and those of issue 10 (a late joiner
# of a 150-connection session, a forced mute, the router's media_failed), first natively and then
# under valgrind (no invalid access, no leak). Each scenario has its own session. Everything it starts is stopped on exit; any failure exits non-zero.
#
# Installs gcc, make, valgrind and python3 with apt-get when missing (Debian 12, as root or with
# sudo). Run from anywhere: bash examples/c/run-tests.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never

# shellcheck source=../../scripts/lib/apt.sh
source "$ROOT/scripts/lib/apt.sh"
apt_ensure gcc:gcc make:make valgrind:valgrind python3:python3

echo "--- building libumbra, umbra and the late-joiner check"
# Two commands: `--bin umbra` would also filter umbra-capi's targets, and libumbra.so would not
# be rebuilt (the tests would silently run an older library left in the target directory).
cargo build --locked -p umbra-capi
cargo build --locked -p umbra-server --bin umbra
cargo build --locked -p umbra-client --example late-joiner-check
# The test-only lying publisher (declares E2EE, sends plain media): a Rust program, since the C
# API deliberately has no way to do that.
cargo build --locked -p umbra-client --features testing-plaintext-publisher --example plaintext-publisher
LIB_DIR="$CARGO_TARGET_DIR/debug"
UMBRA="$CARGO_TARGET_DIR/debug/umbra"
CHECK="$CARGO_TARGET_DIR/debug/examples/late-joiner-check"
PLAINTEXT_PUB="$CARGO_TARGET_DIR/debug/examples/plaintext-publisher"

WORK=$(mktemp -d -t umbra-c-sdk.XXXXXX)
SERVER_PID="" MF_SERVER_PID=""
cleanup() {
  local rc=$?
  # Stop every example still running (only the ones this script started), then the servers.
  for pid in $(jobs -p); do
    [ "$pid" = "$SERVER_PID" ] || [ "$pid" = "$MF_SERVER_PID" ] || kill "$pid" 2>/dev/null || true
  done
  for pid in $SERVER_PID $MF_SERVER_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "--- server log (last 40 lines)"; tail -n 40 "$WORK/server.log" 2>/dev/null || true
    echo "--- media-failed server log (last 20 lines)"; tail -n 20 "$WORK/server-media-failed.log" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT INT TERM

echo "--- building the C examples"
make -s -C examples/c UMBRA_LIB_DIR="$LIB_DIR" OUT="$WORK/bin"
BIN="$WORK/bin"

# Starts `umbra serve` on free loopback ports with its data in directory $1 (its output in
# $1.out and $1.log; more `serve` arguments after $1). Sets STARTED_PID and STARTED_URL.
start_server() {
  local dir=$1; shift
  mkdir -p "$dir"
  : >"$dir.out"
  "$UMBRA" --data-dir "$dir" serve --listen 127.0.0.1:0 --media-bind 127.0.0.1:0 "$@" >"$dir.out" 2>"$dir.log" &
  STARTED_PID=$!
  STARTED_URL=""
  for _ in $(seq 300); do
    STARTED_URL=$(sed -n 's/^umbra listening on //p' "$dir.out" | head -n1)
    [ -n "$STARTED_URL" ] && break
    kill -0 "$STARTED_PID" 2>/dev/null || { echo "umbra serve exited"; cat "$dir.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$STARTED_URL" ] || { echo "umbra serve did not start within 30 s"; exit 1; }
}

# Creates an E2EE-enabled project on the server whose data is in $1; prints its API key and
# secret on one line.
new_project() {
  "$UMBRA" --data-dir "$1" project create --name c-sdk --e2ee --output json |
    python3 -c 'import json,sys; p = json.load(sys.stdin); print(p["api_key"], p["api_secret"])'
}

echo "--- starting umbra serve"
DATA="$WORK/server"
start_server "$DATA"
SERVER_PID=$STARTED_PID URL=$STARTED_URL
echo "server at $URL"
read -r KEY API_SECRET < <(new_project "$DATA")
[ -n "$API_SECRET" ] || { echo "project create failed"; exit 1; }

# A second server whose media router advertises a UDP port where nothing answers (a socket a
# small python process holds and never reads): media never connects, and the router reports
# media_failed to the publisher. Loopback only.
python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1], flush=True); time.sleep(3600)' >"$WORK/black-hole.port" &
for _ in $(seq 100); do [ -s "$WORK/black-hole.port" ] && break; sleep 0.1; done
MF_DATA="$WORK/server-media-failed"
start_server "$MF_DATA" --media-advertise "127.0.0.1:$(cat "$WORK/black-hole.port")"
MF_SERVER_PID=$STARTED_PID MF_URL=$STARTED_URL
read -r MF_KEY MF_SECRET < <(new_project "$MF_DATA")
[ -n "$MF_SECRET" ] || { echo "project create failed"; exit 1; }

SECRET="correct horse battery staple"
OTHER_SECRET="a different secret entirely"

# Prints "--url ... --api-key ... --session-id ... --token ..." for a new session's client.
new_session() { python3 "$ROOT/examples/c/new-session.py" "$URL" "$KEY" "$API_SECRET"; }
client() {
  local session=$1 token
  token=$("$UMBRA" --data-dir "$DATA" token --project "$KEY" --session-id "$session")
  printf '%s\n' --url "$URL" --api-key "$KEY" --session-id "$session" --token "$token"
}

# Valgrind settings: any invalid access, use of undefined memory, or definite/indirect/possible
# leak is an error (exit 99). Still-reachable blocks are not: the only ones are the one-time
# global state of the system's OpenSSL (libcrypto's init tables and error strings, loaded once
# per process and not freed at exit). examples/c/valgrind.supp holds the one suppressed false
# positive (in str0m's optimised code, explained there).
VALGRIND=(valgrind --quiet --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible
          --errors-for-leak-kinds=definite,indirect,possible --num-callers=40
          --suppressions="$ROOT/examples/c/valgrind.supp")

FAILED=0
run_scenario() { # name, then the commands' runner prefix ("" or "vg")
  local name=$1 mode=$2 rc=0
  echo "--- scenario: $name${mode:+ (under valgrind)}"
  "scenario_$name" "$mode" || rc=$?
  if [ "$rc" -ne 0 ]; then
    echo "FAILED: $name${mode:+ under valgrind} (exit $rc)"
    FAILED=1
  fi
}

# Runs an example, under valgrind when $mode is "vg", with its own log.
example() { # mode, log name, program, args...
  local mode=$1 log=$2; shift 2
  local prog=$1; shift
  if [ "$mode" = vg ]; then
    timeout 240 "${VALGRIND[@]}" --log-file="$WORK/$log.valgrind" "$BIN/$prog" "$@" >"$WORK/$log.out" 2>&1
  else
    timeout 120 "$BIN/$prog" "$@" >"$WORK/$log.out" 2>&1
  fi
}

report() { # log names...
  for log in "$@"; do
    sed "s/^/  [$log] /" "$WORK/$log.out"
    if [ -s "$WORK/$log.valgrind" ]; then sed "s/^/  [$log valgrind] /" "$WORK/$log.valgrind"; fi
  done
}

scenario_invalid_secret() {
  local mode=$1 rc=0 s; s=$(new_session)
  mapfile -t c < <(client "$s")
  example "$mode" invalid publisher "${c[@]}" --secret "short" --expect-invalid-secret || rc=$?
  report invalid; return "$rc"
}

# The same check with the publisher linked against libumbra.a instead of libumbra.so.
scenario_static_link() {
  local mode=$1 rc=0 s; s=$(new_session)
  mapfile -t c < <(client "$s")
  example "$mode" static publisher-static "${c[@]}" --secret "short" --expect-invalid-secret || rc=$?
  report static; return "$rc"
}

scenario_missing_secret() {
  local mode=$1 rc=0 s; s=$(new_session)
  mapfile -t c < <(client "$s")
  local seconds=20; [ "$mode" = vg ] && seconds=90
  example "$mode" missing publisher "${c[@]}" --expect-missing-secret --seconds "$seconds" || rc=$?
  report missing; return "$rc"
}

# A publisher and a subscriber with the same secret: the subscriber checks that frames match
# the test pattern (frame number strip and PSNR) and that audio is heard. Valgrind makes
# everything ~30x slower, so the picture is smaller there and fewer frames are required.
scenario_same_secret() {
  local mode=$1 rc=0 prc=0 s extra=(); s=$(new_session)
  mapfile -t p < <(client "$s"); mapfile -t c < <(client "$s")
  local frames=60 seconds=30 pub_seconds=40
  if [ "$mode" = vg ]; then frames=20 seconds=120 pub_seconds=150 extra=(--size 160x120 --fps 15); fi
  example "$mode" same-pub publisher "${p[@]}" --secret "$SECRET" --seconds "$pub_seconds" --expect-signal "${extra[@]}" &
  local pub=$!
  example "$mode" same-sub subscriber "${c[@]}" --secret "$SECRET" --frames "$frames" --seconds "$seconds" || rc=$?
  # The subscriber signalled "c-sdk-done" before leaving: the publisher stops on its own.
  wait "$pub" || prc=$?
  report same-pub same-sub
  [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ]
}

# The same, with the pictures supplied by the application's own capturer thread and the audio
# by the audio device hooks.
scenario_capturer() {
  local mode=$1 rc=0 prc=0 s extra=(); s=$(new_session)
  mapfile -t p < <(client "$s"); mapfile -t c < <(client "$s")
  local frames=60 seconds=30 pub_seconds=40
  if [ "$mode" = vg ]; then frames=20 seconds=120 pub_seconds=150 extra=(--size 160x120 --fps 15); fi
  example "$mode" cap-pub publisher "${p[@]}" --secret "$SECRET" --seconds "$pub_seconds" --capturer --audio-device "${extra[@]}" &
  local pub=$!
  example "$mode" cap-sub subscriber "${c[@]}" --secret "$SECRET" --frames "$frames" --seconds "$seconds" || rc=$?
  wait "$pub" || prc=$?
  report cap-pub cap-sub
  [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ]
}

# A publisher whose media cannot reach the router: the router's media_failed must reach the
# publisher's on_error as OTC_PUBLISHER_WEBRTC_ERROR (the router gives up within 30 s).
scenario_media_failed() {
  local mode=$1 rc=0 s token
  s=$(python3 "$ROOT/examples/c/new-session.py" "$MF_URL" "$MF_KEY" "$MF_SECRET")
  token=$("$UMBRA" --data-dir "$MF_DATA" token --project "$MF_KEY" --session-id "$s")
  example "$mode" media-failed publisher --url "$MF_URL" --api-key "$MF_KEY" --session-id "$s" --token "$token" \
    --secret "$SECRET" --expect-media-failed --seconds 60 --size 160x120 --fps 15 || rc=$?
  report media-failed; return "$rc"
}

scenario_different_secret() {
  local mode=$1 rc=0 prc=0 s extra=(); s=$(new_session)
  mapfile -t p < <(client "$s"); mapfile -t c < <(client "$s")
  local seconds=30 pub_seconds=20
  if [ "$mode" = vg ]; then seconds=120 pub_seconds=60 extra=(--size 160x120 --fps 15); fi
  # The subscriber's signals are sealed with its secret: the publisher's on_error must get
  # OTC_SESSION_SIGNAL_DECRYPTION_FAILED for them (it registers no signal callbacks table).
  example "$mode" diff-pub publisher "${p[@]}" --secret "$SECRET" --seconds "$pub_seconds" --expect-signal-failure "${extra[@]}" &
  local pub=$!
  example "$mode" diff-sub subscriber "${c[@]}" --secret "$OTHER_SECRET" --expect-mismatch --seconds "$seconds" || rc=$?
  wait "$pub" || prc=$?
  report diff-pub diff-sub
  [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ]
}

# A publisher that declares E2EE but sends plain media (the Rust test-only plaintext-publisher)
# and a C subscriber with the right secret: on_error must report OTC_SUBSCRIBER_STREAM_NOT_ENCRYPTED
# once, never a mismatch, and nothing may be rendered. Only the subscriber runs under valgrind.
scenario_not_encrypted() {
  local mode=$1 rc=0 prc=0 s seconds=30 pub_seconds=40; s=$(new_session)
  [ "$mode" = vg ] && seconds=120 pub_seconds=150
  mapfile -t p < <(client "$s"); mapfile -t c < <(client "$s")
  timeout $((pub_seconds + 30)) "$PLAINTEXT_PUB" "${p[@]}" --secret "$SECRET" --seconds "$pub_seconds" >"$WORK/plain-pub.out" 2>&1 &
  local pub=$!
  example "$mode" plain-sub subscriber "${c[@]}" --secret "$SECRET" --expect-not-encrypted --seconds "$seconds" || rc=$?
  # The subscriber signalled "c-sdk-done" before leaving: the publisher stops on its own.
  wait "$pub" || prc=$?
  report plain-pub plain-sub
  [ "$rc" -eq 0 ] && [ "$prc" -eq 0 ]
}

# A late joiner of a relayed session of 150 connections and 120 streams (protocol-level
# participants made by the check, a Rust program: crates/umbra-client/examples/late_joiner_check.rs),
# more than one page of the session's description: the C program must report every connection
# and stream exactly once, then a new connection, an unpublished stream and a stream whose video
# goes off; then it publishes, the check mutes its stream with the REST API, and on_mute_forced
# must follow with the audio off (and the session must see the stream's audio go off).
scenario_late_joiner() {
  local mode=$1 rc=0 patience=30 seconds=120 runner=()
  if [ "$mode" = vg ]; then
    patience=180 seconds=600 runner=("${VALGRIND[@]}" --log-file="$WORK/late.valgrind")
  fi
  timeout $((seconds + 60)) "$CHECK" --server "${URL#http://}" --api-key "$KEY" --api-secret "$API_SECRET" \
    --connections 150 --streams 120 --patience-secs "$patience" \
    -- "${runner[@]}" "$BIN/late-joiner" --seconds "$seconds" >"$WORK/late.out" 2>&1 || rc=$?
  report late; return "$rc"
}

# End-to-end encrypted signals (docs/e2ee-protocol.md §12) through otc_session_set_signal_callbacks:
# three C receivers (same secret, another secret, no secret) and the app server's REST signal,
# then a C sender. Same secret: the plain signal, end_to_end_encrypted true; another secret:
# OTC_SIGNAL_ENCRYPTION_SECRET_MISMATCH (1574); no secret: OTC_SIGNAL_ENCRYPTION_SECRET_MISSING (1571);
# the REST signal reaches everyone with end_to_end_encrypted false. A receiver that gets any
# other signal (a plaintext it must not see) fails.
scenario_signals() {
  local mode=$1 rc=0 s seconds=60 pids=() name; s=$(new_session)
  [ "$mode" = vg ] && seconds=240
  mapfile -t a < <(client "$s"); mapfile -t b < <(client "$s"); mapfile -t c < <(client "$s"); mapfile -t d < <(client "$s")
  local rest=(--expect-plain "from-app:hello from the app server")
  example "$mode" sig-same signals "${a[@]}" --secret "$SECRET" --seconds "$seconds" --expect-encrypted "chat:hello from C" "${rest[@]}" &
  pids+=($!)
  example "$mode" sig-other signals "${b[@]}" --secret "$OTHER_SECRET" --seconds "$seconds" --expect-failure 1574 "${rest[@]}" &
  pids+=($!)
  example "$mode" sig-none signals "${d[@]}" --seconds "$seconds" --expect-failure 1571 "${rest[@]}" &
  pids+=($!)
  for name in sig-same sig-other sig-none; do
    for _ in $(seq $((seconds * 10))); do grep -q '^connected' "$WORK/$name.out" 2>/dev/null && break; sleep 0.1; done
  done
  python3 "$ROOT/examples/c/rest-signal.py" "$URL" "$KEY" "$API_SECRET" "$s" from-app "hello from the app server" || rc=$?
  example "$mode" sig-send signals "${c[@]}" --secret "$SECRET" --seconds "$seconds" --peers 3 --send "chat:hello from C" \
    --expect-encrypted "chat:hello from C" || rc=$?
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  report sig-same sig-other sig-none sig-send
  return "$rc"
}

for mode in "" vg; do
  run_scenario invalid_secret "$mode"
  [ -n "$mode" ] || run_scenario static_link "$mode"
  run_scenario missing_secret "$mode"
  run_scenario same_secret "$mode"
  run_scenario different_secret "$mode"
  run_scenario not_encrypted "$mode"
  run_scenario capturer "$mode"
  run_scenario late_joiner "$mode"
  run_scenario media_failed "$mode"
  run_scenario signals "$mode"
done

if [ "$FAILED" -ne 0 ]; then
  echo "C SDK scenarios FAILED"
  exit 1
fi
echo "C SDK scenarios passed (natively and under valgrind)"
