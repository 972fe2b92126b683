#!/usr/bin/env bash
# Load test of signed webhook ingest on loopback (issue 4's benchmark). Starts the `dist` build
# (release + LTO, what the Dockerfile ships) of `auger serve` on a temp folder, then runs wrk:
#   floor:    a bare receiver that only checks the HMAC (examples/bare_receiver.rs), 64 conns
#   baseline: GET /healthz (the HTTP stack alone, no signature, no disk)
#   ingest:   POST /webhooks/github with the real status fixture, a new delivery id each time,
#             at 1, 64 and 256 connections, and paced at ~5,000/s over 64 connections.
# Prints throughput, latency percentiles and the server's RSS (idle, peak).
# Usage: benches/ingest/run.sh [seconds per run, default 10]   (env AUGER_BIN: binary to measure)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-10}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
# AUGER_BIN: measure another build (e.g. an earlier commit's) with this same script.
if [ -z "${AUGER_BIN:-}" ]; then
  cargo build --profile dist --bin auger --manifest-path "$root/Cargo.toml" >/dev/null
fi
cargo build --profile dist --example bare_receiver --manifest-path "$root/Cargo.toml" >/dev/null
bin=${AUGER_BIN:-${CARGO_TARGET_DIR:-$root/target}/dist/auger}
bare=${CARGO_TARGET_DIR:-$root/target}/dist/examples/bare_receiver

work=$(mktemp -d)
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$work/policies" "$work/templates/web"
echo 'x: {{ vars.image }}' > "$work/templates/web/d.yaml.tera"
cat > "$work/policies/hello.toml" <<TOML
app = "hello"
repo = "Codertocat/Hello-World"
template = "web"
[artifact]
signals = ["status:default"]
[vars]
image = "x"
TOML
printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "data"\n' > "$work/auger.toml"
body="$root/../shared/fixtures/webhooks/status.payload.json"
export AUGER_WEBHOOK_SECRET=bench-secret
sig="sha256=$(openssl dgst -sha256 -hmac "$AUGER_WEBHOOK_SECRET" -r "$body" | cut -d' ' -f1)"

cd "$work"
# The floor, first and alone: a receiver that only checks the HMAC (examples/bare_receiver.rs).
"$bare" > "$work/bare.out" &
bare_pid=$!
for _ in $(seq 100); do grep -q listening "$work/bare.out" 2>/dev/null && break; sleep 0.1; done
bare_url=$(sed -n 's/^bare receiver listening on //p' "$work/bare.out")
echo "== floor: bare HMAC receiver, 64 connections"
BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c64 -d"${secs}s" --latency \
  -s "$here/deliveries.lua" "$bare_url/webhooks/github" | grep -E 'Requests/sec|50%|99%|Non-2xx'
kill $bare_pid; wait $bare_pid 2>/dev/null || true

RUST_LOG=warn "$bin" serve --config auger.toml > "$work/out" &
pid=$!
for _ in $(seq 100); do grep -q listening "$work/out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^auger listening on //p' "$work/out")
rss() { awk '/VmRSS|VmHWM/ {printf "%s %s kB  ", $1, $2}' /proc/$pid/status; echo; }
echo "server $url  pid $pid"
echo "idle: $(rss)"

run() { # name, connections, threads, extra env
  local name=$1 c=$2 t=$3
  echo "== $name: $c connections"
  BODY="$body" SIG="$sig" PACE_MS=${PACE_MS:-0} wrk -t"$t" -c"$c" -d"${secs}s" --latency \
    -s "$here/deliveries.lua" "$url/webhooks/github" | grep -E 'Requests/sec|Latency|50%|90%|99%|Non-2xx|Socket errors'
}
echo "== baseline GET /healthz: 64 connections"
wrk -t2 -c64 -d"${secs}s" --latency "$url/healthz" | grep -E 'Requests/sec|50%|99%'
# Paced first, on a fresh server: the open-loop latency at 5,000/s in steady state, before the
# saturating runs leave the worker a backlog of hundreds of thousands of deliveries to chew.
PACE_MS=12.8 run "ingest paced ~5,000/s (64 conns x 1 req / 12.8 ms)" 64 2
run "ingest" 1 1
run "ingest" 64 2
run "ingest" 256 2
echo "after load: $(rss)"
echo "inbox: $(curl -s "$url/metrics" | grep -E '^auger_inbox_(depth|appended_total|fsyncs_total)' | tr '\n' ' ')"
