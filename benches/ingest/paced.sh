#!/usr/bin/env bash
# Open-loop latency at ~5,000 deliveries/s on a fresh server: the issue's "p99 at 5,000/s",
# alone, so builds can be alternated quickly. Starts `auger serve` (AUGER_BIN, default the
# `dist` build) on a new temp folder (DATA_DIR: a folder to make the server's data folder in
# instead, e.g. on tmpfs; only what the script made there is removed), posts
# the status fixture with `deliveries.lua` paced at 12.8 ms per connection over 64 connections,
# and prints p50, p99, the rate and the number of `fdatasync`s.
# Usage: benches/ingest/paced.sh [seconds, default 8]   (run it a few times, alternating builds)
set -euo pipefail
secs=${1:-8}
source "$(dirname "$0")/common.sh"
fresh_server
result=$(BODY="$body" SIG="$sig" PACE_MS=12.8 wrk -t2 -c64 -d"${secs}s" --latency \
  -s "$here/deliveries.lua" "$url/webhooks/github")
p50=$(echo "$result" | awk '$1 == "50%" {print $2}')
p99=$(echo "$result" | awk '$1 == "99%" {print $2}')
rate=$(echo "$result" | awk '/Requests\/sec/ {print $2}')
fsyncs=$(curl -s "$url/metrics" | awk '/^auger_inbox_fsyncs_total/ {print $2}')
echo "p50 $p50  p99 $p99  rate $rate/s  fsyncs $fsyncs"
