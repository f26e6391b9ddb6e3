#!/usr/bin/env bash
# The README's "start the platform" command. Builds `umbra` and `umbra-media` (release), creates a
# demo project with the E2EE add-on on first run, prints its API key and secret and the URL, then
# runs the server in the foreground (Ctrl-C stops it gracefully). Safe to re-run: the demo project and all
# sessions live in the data directory and are reused.
#
# Environment: UMBRA_LISTEN (default 127.0.0.1:8080), UMBRA_DATA_DIR (default ./umbra-data),
# CARGO_TARGET_DIR (default ~/.cache/umbra/target), UMBRA_DEMO (default 1: the demo app at / gets
# tokens from POST /demo/token; set UMBRA_DEMO=0 when anyone untrusted can reach the server). Other `umbra serve` settings: see
# `umbra serve --help` and docs/server.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/umbra/target}"
export CARGO_TERM_COLOR=never
mkdir -p "$CARGO_TARGET_DIR"

./scripts/install-deps.sh

echo "==> building the Web SDK (sdk/web/dist, served at /sdk/)"
if ! command -v npm >/dev/null; then
  echo "npm is missing: install Node.js >= 20 (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
(cd sdk/web && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)

echo "==> building umbra, the server, and umbra-media, the native command-line client (release)"
cargo build --locked --release -p umbra-server --bin umbra -p umbra-media --bin umbra-media

UMBRA="$CARGO_TARGET_DIR/release/umbra"
MEDIA="$CARGO_TARGET_DIR/release/umbra-media"
export UMBRA_DATA_DIR="${UMBRA_DATA_DIR:-$PWD/umbra-data}"
export UMBRA_LISTEN="${UMBRA_LISTEN:-127.0.0.1:8080}"
export UMBRA_DEMO="${UMBRA_DEMO:-1}"
export UMBRA_WEB_DIR="${UMBRA_WEB_DIR:-$PWD/sdk/web}"

echo "==> demo project (data in $UMBRA_DATA_DIR)"
PROJECT=$("$UMBRA" project create --name demo --e2ee --if-absent)
echo "$PROJECT"
API_KEY=$(awk '$1 == "api_key:" { print $2 }' <<<"$PROJECT")
API_SECRET=$(awk '$1 == "api_secret:" { print $2 }' <<<"$PROJECT")
cat <<MSG

Umbra is starting at http://$UMBRA_LISTEN
  demo app (camera, mic, E2EE):   http://$UMBRA_LISTEN/    (demo mode: UMBRA_DEMO=$UMBRA_DEMO)
  Web SDK:                        http://$UMBRA_LISTEN/sdk/umbra.js  (ES module: /sdk/umbra.mjs)
  REST API (OpenTok-compatible):  http://$UMBRA_LISTEN/session/create
  signaling WebSocket:            ws://$UMBRA_LISTEN/v1/signaling
  health / metrics:               http://$UMBRA_LISTEN/healthz  http://$UMBRA_LISTEN/metrics
Use the api_key and api_secret above with an OpenTok server SDK, e.g. in Python:
  opentok.Client(API_KEY, API_SECRET, api_url="http://$UMBRA_LISTEN")
More projects: $UMBRA project create --name NAME [--e2ee]   (docs/server.md)
Native client, in another terminal: publish the test pattern and a tone, end-to-end encrypted
(it creates the session and prints its id), then subscribe with the same secret:
  export UMBRA_URL=http://$UMBRA_LISTEN UMBRA_API_KEY=$API_KEY UMBRA_API_SECRET=$API_SECRET
  $MEDIA publish --secret 'correct horse battery staple'
  $MEDIA subscribe --session-id SESSION_ID --secret 'correct horse battery staple'

MSG
exec "$UMBRA" serve
