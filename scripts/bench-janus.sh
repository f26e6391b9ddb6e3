#!/usr/bin/env bash
# Router vs Janus, side by side (docs/performance.md, "Router vs Janus"; issue 12).
#
# One publisher (synthetic VP8 ~2.5 Mb/s 30 fps + Opus-shaped 20 ms audio) and N subscribers, all
# in one `umbra-loadgen` process, against
#   - `umbra serve` (REST API + docs/signaling.md), and
#   - Janus VideoRoom from Debian's `janus` package (its HTTP API), with `event_loops` set to the
#     core count (the setting its docs recommend for scale),
# in two private network namespaces joined by a veth pair: the servers in one (10.77.0.1), the load
# client in the other (10.77.0.2). Janus ignores loopback candidates, and its ICE (libnice) answers
# no checks when both ends of the veth sit in one namespace (the packets then travel over `lo`),
# so the client has a namespace of its own; both servers' HTTP APIs listen on 10.77.0.1. No packet
# leaves the two namespaces. Each server is started fresh for every point; the order alternates
# per N.
# The knee is the largest N whose mean loss is at most 1 %; then each server runs 1.5x the knee.
#
# Environment (all optional):
#   BENCH_N="25 50 100 150"   subscriber counts          BENCH_DURATION=10  window, seconds
#   BENCH_WARMUP=3            warm-up, seconds            BENCH_PAST_KNEE=1  0 to skip the 1.5x runs
#   BENCH_OUT=FILE            JSON lines (default /tmp/umbra-bench-janus-DATE.jsonl)
#   BENCH_KEEP=1              keep the temporary directory (server and client logs)
#   BENCH_THREADS             load client subscriber threads (default: cores)
#   BENCH_PACE=0              the publisher paces at this multiple of its rate (2.5: a browser's
#                             pacer); 0 sends each frame in one burst
#   UMBRA_BIN, LOADGEN_BIN    binaries (default: release builds with the shared CARGO_TARGET_DIR)
# Needs root (ip netns). Bounded: every load client run is killed after 240 s; ~25 s per point.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"

BENCH_N="${BENCH_N:-25 50 100 150}"
BENCH_DURATION="${BENCH_DURATION:-10}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_PAST_KNEE="${BENCH_PAST_KNEE:-1}"
CORES=$(nproc)
BENCH_THREADS="${BENCH_THREADS:-$CORES}"
BENCH_PACE="${BENCH_PACE:-0}"

log() { printf '[bench-janus] %s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || { log "needs root (network namespaces)"; exit 1; }
if ! command -v janus >/dev/null; then
  log "installing janus (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y janus >/dev/null
fi
for tool in ip jq python3; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 1; }
done
JANUS_VERSION=$(dpkg-query -W -f='${Version}' janus 2>/dev/null || echo unknown)

if [ -z "${UMBRA_BIN:-}" ] || [ -z "${LOADGEN_BIN:-}" ]; then
  log "building umbra and umbra-loadgen (release)"
  nice -n 10 cargo build --release -p umbra-server --bin umbra -p umbra-loadgen --bin umbra-loadgen >&2
fi
UMBRA_BIN="${UMBRA_BIN:-$CARGO_TARGET_DIR/release/umbra}"
LOADGEN_BIN="${LOADGEN_BIN:-$CARGO_TARGET_DIR/release/umbra-loadgen}"

TMP=$(mktemp -d /tmp/umbra-bench-janus.XXXXXX)
OUT="${BENCH_OUT:-/tmp/umbra-bench-janus-$(date +%Y%m%d-%H%M%S).jsonl}"
: > "$OUT"
NS="umbra-bench-$$-srv"
NSC="umbra-bench-$$-cli"
SERVER_IP=10.77.0.1
CLIENT_IP=10.77.0.2
SERVER_PID=""

stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() {
  stop_server
  ip netns del "$NS" 2>/dev/null || true
  ip netns del "$NSC" 2>/dev/null || true
  [ -n "${BENCH_KEEP:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- two namespaces and a veth pair between them ---
ip netns add "$NS"
ip netns add "$NSC"
ip -n "$NS" link set lo up
ip -n "$NSC" link set lo up
ip -n "$NS" link add ubv0 type veth peer name ubv1 netns "$NSC"
ip -n "$NS" addr add "$SERVER_IP/24" dev ubv0
ip -n "$NSC" addr add "$CLIENT_IP/24" dev ubv1
ip -n "$NS" link set ubv0 up
ip -n "$NSC" link set ubv1 up
in_ns() { ip netns exec "$NS" "$@"; }

# A TCP port nobody listens on inside the namespace (it is new, but check anyway).
free_port() {
  local p=$1
  while in_ns ss -Htln "sport = :$p" | grep -q .; do p=$((p + 1)); done
  echo "$p"
}

# --- Janus configuration: event_loops = cores, HTTP transport on the server address, VideoRoom only ---
JDIR="$TMP/janus"
mkdir -p "$JDIR/plugins" "$JDIR/transports" "$JDIR/events" "$JDIR/loggers"
LIBDIR=$(dirname "$(dpkg -L janus | grep -m1 '/janus/plugins/libjanus_videoroom.so$')")
ln -s "$LIBDIR/libjanus_videoroom.so" "$JDIR/plugins/"
ln -s "$(dirname "$LIBDIR")/transports/libjanus_http.so" "$JDIR/transports/"
JANUS_PORT=$(free_port 8088)
cat > "$JDIR/janus.jcfg" <<EOF
general: {
	configs_folder = "$JDIR"
	plugins_folder = "$JDIR/plugins"
	transports_folder = "$JDIR/transports"
	events_folder = "$JDIR/events"
	loggers_folder = "$JDIR/loggers"
	debug_level = 3
	session_timeout = 60
	event_loops = $CORES
}
certificates: {
}
media: {
	rtp_port_range = "20000-40000"
}
nat: {
	nice_debug = false
	ice_enforce_list = "ubv0"
}
plugins: {
}
transports: {
}
events: {
	broadcast = false
}
EOF
cat > "$JDIR/janus.transport.http.jcfg" <<EOF
general: {
	json = "compact"
	base_path = "/janus"
	http = true
	port = $JANUS_PORT
	ip = "$SERVER_IP"
	https = false
}
admin: {
	admin_http = false
	admin_https = false
}
EOF
cat > "$JDIR/janus.plugin.videoroom.jcfg" <<EOF
general: {
}
EOF

start_janus() {
  # Not through in_ns: $! must be Janus itself (ip netns exec execs the command).
  ip netns exec "$NS" janus -C "$JDIR/janus.jcfg" -F "$JDIR" -L "$TMP/janus-$1.log" --disable-colors >/dev/null 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    if in_ns curl -s -m 1 -o /dev/null "http://$SERVER_IP:$JANUS_PORT/janus/info"; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "janus did not start: $(tail -5 "$TMP/janus-$1.log" 2>/dev/null)"
  return 1
}

# Umbra: a fresh data directory (SQLite) per run, a project, the server on the veth address.
UMBRA_URL=""
UMBRA_KEY=""
UMBRA_SECRET=""
start_umbra() {
  local data="$TMP/umbra-$1"
  mkdir -p "$data"
  local p
  p=$("$UMBRA_BIN" --data-dir "$data" project create --name bench --output json)
  UMBRA_KEY=$(jq -r .api_key <<<"$p")
  UMBRA_SECRET=$(jq -r .api_secret <<<"$p")
  ip netns exec "$NS" "$UMBRA_BIN" --data-dir "$data" serve --listen "$SERVER_IP:0" --media-bind "$SERVER_IP:0" \
    >"$data/stdout" 2>"$data/server.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    UMBRA_URL=$(sed -n 's/^umbra listening on //p' "$data/stdout" | head -1)
    [ -n "$UMBRA_URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
  done
  log "umbra did not start: $(tail -5 "$data/server.log")"
  return 1
}

# One point: a fresh server, one load client run, the server stopped. Appends a JSON line.
point() {
  local backend=$1 n=$2 phase=$3 tag="$1-$2-$RANDOM" args
  if [ "$backend" = umbra ]; then
    start_umbra "$tag" || return 0
    args=(--backend umbra --url "$UMBRA_URL" --api-key "$UMBRA_KEY" --api-secret "$UMBRA_SECRET")
  else
    start_janus "$tag" || return 0
    args=(--backend janus --url "http://$SERVER_IP:$JANUS_PORT/janus")
  fi
  sleep 0.5
  local line
  if line=$(ip netns exec "$NSC" timeout 240 "$LOADGEN_BIN" "${args[@]}" -n "$n" --bind "$CLIENT_IP" \
      --server-pid "$SERVER_PID" --threads "$BENCH_THREADS" --warmup "$BENCH_WARMUP" \
      --duration "$BENCH_DURATION" --pace "$BENCH_PACE" --label "janus=$JANUS_VERSION event_loops=$CORES" 2>"$TMP/loadgen-$tag.err"); then
    jq -c --arg p "$phase" '. + {phase: $p}' <<<"$line" >> "$OUT"
    tail -1 "$TMP/loadgen-$tag.err" >&2
  else
    log "$backend N=$n: load client failed: $(tail -3 "$TMP/loadgen-$tag.err")"
    jq -cn --arg b "$backend" --argjson n "$n" --arg p "$phase" '{backend: $b, n: $n, phase: $p, failed: true}' >> "$OUT"
  fi
  stop_server
}

log "cores=$CORES janus=$JANUS_VERSION N=[$BENCH_N] window=${BENCH_DURATION}s publisher pace=$BENCH_PACE load: $(cut -d' ' -f1-3 /proc/loadavg)"
i=0
for n in $BENCH_N; do
  if [ $((i % 2)) = 0 ]; then order="umbra janus"; else order="janus umbra"; fi
  for b in $order; do point "$b" "$n" sweep; done
  i=$((i + 1))
done

# The knee of each server: the largest N with mean loss <= 1 % (and every subscriber up).
knee() {
  jq -s --arg b "$1" '[.[] | select(.backend == $b and .phase == "sweep" and (.failed | not) and .loss_pct <= 1
    and .subscribers_receiving == .n) | .n] | max // 0' "$OUT"
}
if [ "$BENCH_PAST_KNEE" = 1 ]; then
  past=""
  for b in umbra janus; do
    k=$(knee "$b")
    [ "$k" -gt 0 ] && past="$past $(( (k * 3 + 1) / 2 ))"
  done
  past=$(tr ' ' '\n' <<<"$past" | sed '/^$/d' | sort -n | uniq | tr '\n' ' ')
  for n in $past; do
    log "past the knee: N=$n"
    if [ $((i % 2)) = 0 ]; then order="umbra janus"; else order="janus umbra"; fi
    for b in $order; do point "$b" "$n" past-knee; done
    i=$((i + 1))
  done
fi

# The table: every point, then Umbra vs Janus at each N.
python3 - "$OUT" "$(knee umbra)" "$(knee janus)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
knee = {"umbra": int(sys.argv[2]), "janus": int(sys.argv[3])}
def g(r, k, fmt="{}"):
    v = r.get(k)
    return "-" if v is None else fmt.format(v)
print("\n| phase | server | N | up | fwd pkt/s | server CPU | µs/pkt | tracks/core | loss mean / worst | latency p50 / p99 | RSS | RSS/sub | client CPU | load |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    if r.get("failed"):
        print(f"| {r['phase']} | {r['backend']} | {r['n']} | failed | | | | | | | | | | |"); continue
    print(f"| {r['phase']} | {r['backend']} | {r['n']} | {r['subscribers_receiving']} | {g(r,'forwarded_pps','{:.0f}')} | {g(r,'server_cpu_pct','{}%')} "
          f"| {g(r,'cpu_us_per_pkt')} | {g(r,'tracks_per_core','{:.0f}')} | {r['loss_pct']} / {r['loss_worst_pct']} % "
          f"| {g(r,'latency_ms_p50')} / {g(r,'latency_ms_p99')} ms | {g(r,'server_rss_mib')} MiB | {g(r,'rss_per_sub_kib')} KiB "
          f"| {r['client_cpu_pct']}% | {r.get('load1_before')} |")
print(f"\nknee (largest N of the sweep with mean loss <= 1 %): umbra {knee['umbra'] or '-'}, janus {knee['janus'] or '-'}")
print("\n| N | µs/pkt umbra / janus | Janus µs ÷ Umbra µs (>1: Umbra cheaper) | tracks/core umbra / janus | loss umbra / janus | p99 umbra / janus | kernel share of CPU umbra / janus |")
print("| --- | --- | --- | --- | --- | --- | --- |")
by = {}
for r in rows:
    if not r.get("failed") and r["phase"] == "sweep": by.setdefault(r["n"], {})[r["backend"]] = r
for n in sorted(by):
    u, j = by[n].get("umbra"), by[n].get("janus")
    if not (u and j) or not u.get("cpu_us_per_pkt") or not j.get("cpu_us_per_pkt"): continue
    print(f"| {n} | {u['cpu_us_per_pkt']} / {j['cpu_us_per_pkt']} | {j['cpu_us_per_pkt']/u['cpu_us_per_pkt']:.2f}x "
          f"| {u['tracks_per_core']:.0f} / {j['tracks_per_core']:.0f} | {u['loss_pct']} / {j['loss_pct']} % | {u['latency_ms_p99']} / {j['latency_ms_p99']} ms "
          f"| {g(u,'server_system_pct_of_cpu','{}%')} / {g(j,'server_system_pct_of_cpu','{}%')} |")
print("\nPast the knee (each server at 1.5x its own knee; healthy = its point at the knee):")
print("| server | knee | N | loss | latency p50 / p99 | RSS | RSS/sub (healthy) |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for b in ("umbra", "janus"):
    k = knee[b]
    if not k: continue
    n = (3 * k + 1) // 2
    past = [r for r in rows if r["backend"] == b and r["phase"] == "past-knee" and r["n"] == n and not r.get("failed")]
    ok = [r for r in rows if r["backend"] == b and r["phase"] == "sweep" and r["n"] == k and not r.get("failed")]
    for r in past:
        h = ok[0].get("rss_per_sub_kib") if ok else None
        print(f"| {b} | {k} | {n} | {r['loss_pct']} % | {g(r,'latency_ms_p50')} / {g(r,'latency_ms_p99')} ms | {g(r,'server_rss_mib')} MiB "
              f"| {g(r,'rss_per_sub_kib')} KiB ({h} KiB) |")
PY
log "JSON lines: $OUT"
