#!/usr/bin/env bash
# Issue 4's other point of scale: Probot (the usual Node framework for GitHub Apps) receiving the
# same signed status deliveries as `run.sh` sends auger, with an app that handles `status` and
# does nothing. Probot verifies the signature, parses the payload and calls the app; nothing is
# stored. Installs probot@13 from the npm registry into PROBOT_DIR (default
# ~/.cache/auger-bench/probot) the first time; needs node and npm.
# Usage: benches/ingest/probot.sh [seconds, default 10]   (64 connections, then 1)
set -euo pipefail
secs=${1:-10}
source "$(dirname "$0")/common.sh"
dir=${PROBOT_DIR:-$HOME/.cache/auger-bench/probot}
if [ ! -x "$dir/node_modules/.bin/probot" ]; then
  mkdir -p "$dir"
  (cd "$dir" && npm init -y >/dev/null && npm install --no-audit --no-fund probot@13 >/dev/null)
fi
[ -f "$dir/key.pem" ] || openssl genrsa -out "$dir/key.pem" 2048 2>/dev/null
echo 'module.exports = (app) => { app.on("status", async () => {}); };' > "$dir/app.js"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd "$dir" && APP_ID=1 PRIVATE_KEY_PATH=key.pem WEBHOOK_SECRET=$AUGER_WEBHOOK_SECRET PORT=$port HOST=127.0.0.1 \
  LOG_LEVEL=fatal NODE_ENV=production exec node node_modules/.bin/probot run ./app.js > out 2>&1) &
pid=$!
trap cleanup EXIT
url="http://127.0.0.1:$port/api/github/webhooks"
for _ in $(seq 100); do curl -s -o /dev/null "$url" 2>/dev/null && break; sleep 0.1; done
echo "probot $(cd "$dir" && node -p 'require("probot/package.json").version') on $url"
for c in 64 1; do
  echo "== probot: $c connections"
  BODY="$body" SIG="$sig" PACE_MS=0 wrk -t"$(( c > 1 ? 2 : 1 ))" -c$c -d"${secs}s" --latency \
    -s "$here/deliveries.lua" "$url" | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'
done
