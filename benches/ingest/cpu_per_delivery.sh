#!/usr/bin/env bash
# Server CPU per delivery: a less noisy figure than throughput on a shared 2-core machine.
# Starts `auger serve` (AUGER_BIN, default the `dist` build), saturates it for 5 s with the
# ingest wrk script at 64 connections, and prints throughput, the server's CPU time (user +
# system, from /proc) divided by the deliveries appended, the fsync count and peak RSS.
# Usage: benches/ingest/cpu_per_delivery.sh   (run it a few times, alternating builds)
set -euo pipefail
source "$(dirname "$0")/common.sh"
fresh_server
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
rate=$(BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c64 -d5s -s "$here/deliveries.lua" \
  "$url/webhooks/github" | awk '/Requests\/sec/ {print $2}')
t1=$(ticks)
metrics=$(curl -s "$url/metrics")
appended=$(echo "$metrics" | awk '/^auger_inbox_appended_total/ {print $2}')
fsyncs=$(echo "$metrics" | awk '/^auger_inbox_fsyncs_total/ {print $2}')
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "rate $rate/s  cpu/delivery $(( (t1 - t0) * 1000000 / $(getconf CLK_TCK) / appended )) us  deliveries $appended  fsyncs $fsyncs  peak RSS ${hwm} kB"
