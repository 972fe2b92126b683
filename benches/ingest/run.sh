#!/usr/bin/env bash
# Load test of signed webhook ingest on loopback (issue 4's benchmark). Starts the `dist` build
# (release + LTO, what the Dockerfile ships) of `auger serve` on a temp folder, then runs wrk:
#   floors:   bare receivers that only check the HMAC, 64 connections: examples/bare_receiver.rs
#             (tokio, two threads) and bare_receiver.c (epoll, one thread: the issue's "bare C
#             receiver"; skipped without gcc and OpenSSL's headers, libssl-dev)
#   baseline: GET /healthz (the HTTP stack alone, no signature, no disk)
#   ingest:   POST /webhooks/github with the real status fixture, a new delivery id each time,
#             at 1, 64 and 256 connections, and paced at ~5,000/s over 64 connections.
# Prints throughput, latency percentiles and the server's RSS (idle, peak).
# Usage: benches/ingest/run.sh [seconds per run, default 10]   (env AUGER_BIN: binary to measure)
set -euo pipefail
secs=${1:-10}
source "$(dirname "$0")/common.sh"
build_auger
cargo build --profile dist --example bare_receiver --manifest-path "$root/Cargo.toml" >/dev/null
bare=${CARGO_TARGET_DIR:-$root/target}/dist/examples/bare_receiver

work=$(mktemp -d)
pid=
trap 'cleanup "$work"' EXIT
server_folder "$work" data

cd "$work"
# The floors, first and alone: receivers that only check the HMAC.
floor() { # name, command...
  local name=$1; shift
  start_receiver "$work/bare.out" "$@"
  echo "== floor: $name, 64 connections"
  BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c64 -d"${secs}s" --latency \
    -s "$here/deliveries.lua" "$url/webhooks/github" | grep -E 'Requests/sec|50%|99%|Non-2xx'
  cleanup
  pid=
}
floor "bare HMAC receiver (Rust, tokio, 2 threads)" "$bare"
if build_c_receiver "$work/bare_c"; then
  floor "bare HMAC receiver (C, epoll, 1 thread)" env THREADS=1 "$work/bare_c"
else
  echo "== floor: bare C receiver skipped (needs gcc and libssl-dev)"
fi

start_server "$work" warn
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
