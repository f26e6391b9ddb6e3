# Sourced by the SDK suites (sdk/dotnet/run-tests.sh, sdk/android/run-tests.sh): a temporary
# directory for the suite, one `umbra serve` on loopback in it on free ports (so a suite runs
# while ./scripts/start.sh holds 8080 and 7882), an E2EE project, and a cleanup that stops the
# server and, when the suite failed, shows the end of its log.
#
#   suite_begin NAME            WORK (removed on exit); installs the EXIT/INT/TERM trap
#   suite_server UMBRA NAME     DATA, URL, SERVER_PID; PROJECT (JSON), read with `project_field`

suite_begin() {
  WORK=$(mktemp -d -t "umbra-$1.XXXXXX")
  SERVER_PID=""
  trap suite_cleanup EXIT INT TERM
}

suite_cleanup() {
  local rc=$?
  if [ -n "$SERVER_PID" ]; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  wait 2>/dev/null || true
  if [ "$rc" -ne 0 ]; then
    echo "--- server log (last 40 lines)"; tail -n 40 "$WORK/server.log" 2>/dev/null || true
  fi
  rm -rf "$WORK"
  exit "$rc"
}

suite_server() {
  local umbra=$1 name=$2
  echo "--- starting umbra serve"
  DATA=$WORK/data
  mkdir -p "$DATA"
  "$umbra" --data-dir "$DATA" serve --listen 127.0.0.1:0 --media-bind 127.0.0.1:0 >"$WORK/server.out" 2>"$WORK/server.log" &
  SERVER_PID=$!
  URL=""
  for _ in $(seq 300); do
    URL=$(sed -n 's/^umbra listening on //p' "$WORK/server.out" | head -n1)
    [ -n "$URL" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "umbra serve exited"; exit 1; }
    sleep 0.1
  done
  [ -n "$URL" ] || { echo "umbra serve did not start within 30 s"; exit 1; }
  echo "server at $URL"
  PROJECT=$("$umbra" --data-dir "$DATA" project create --name "$name" --e2ee --output json)
}

project_field() {
  python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1" <<<"$PROJECT"
}
