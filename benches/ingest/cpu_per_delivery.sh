#!/usr/bin/env bash
# CPU per delivery: a less noisy figure than throughput on a shared 2-core machine.
# Saturates a receiver for 5 s with the ingest wrk script at 64 connections and prints the
# throughput, the receiver's CPU time per request (user + system, from /proc), wrk's, and how
# busy the machine was. Receiver and wrk share the cores: with no idle left the rate is about
# 2 cores / (receiver + wrk CPU per request), so this shows whose microseconds a rate is made of.
# Usage: benches/ingest/cpu_per_delivery.sh [auger|c]   (run it a few times, alternating)
#   DRAIN=1 (auger only): also wait until the worker has processed every accepted delivery and
#                    print the CPU per delivery of the whole process from the load's start to
#                    then: the edge's share and the worker's, wherever each ran
#   auger (default): `auger serve` (AUGER_BIN, default the `dist` build) on a fresh folder; also
#                    prints the inbox's fsyncs and the peak RSS
#   c:               the bare C receiver (bare_receiver.c, one thread), the issue's floor
set -euo pipefail
source "$(dirname "$0")/common.sh"
receiver=${1:-auger}
case $receiver in
  auger) fresh_server ;;
  c)
    work=$(mktemp -d)
    pid=
    trap 'cleanup "$work"' EXIT
    build_c_receiver "$work/bare_c" || { echo "needs gcc and libssl-dev" >&2; exit 1; }
    start_receiver "$work/out" "$work/bare_c"
    ;;
  *) echo "usage: $0 [auger|c]" >&2; exit 2 ;;
esac

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
stat0=$(head -1 /proc/stat)
t0=$(ticks)
TIMEFORMAT='wrk-cpu %U %S'
out=$( { time BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c64 -d5s -s "$here/deliveries.lua" \
  "$url/webhooks/github"; } 2>&1 )
t1=$(ticks)
stat1=$(head -1 /proc/stat)

requests=$(echo "$out" | awk '/requests in/ {print $1}')
per_request() { awk -v s="$1" -v n="$requests" 'BEGIN {printf "%.1f", s * 1e6 / n}'; }
server_cpu=$(per_request "$(awk -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {print t / hz}')")
wrk_cpu=$(per_request "$(echo "$out" | awk '/^wrk-cpu/ {print $2 + $3}')")
# The cpu line of /proc/stat: user nice system idle iowait irq softirq steal (in ticks).
machine=$(awk -v a="$stat0" -v b="$stat1" 'BEGIN {
  split(a, x, " "); split(b, y, " "); for (i = 2; i <= 9; i++) t += y[i] - x[i]
  printf "idle %.0f%%  iowait %.0f%%  steal %.0f%%", (y[5] - x[5]) * 100 / t, (y[6] - x[6]) * 100 / t, (y[9] - x[9]) * 100 / t
}')
echo "$receiver: rate $(echo "$out" | awk '/Requests\/sec/ {print $2}')/s  cpu/delivery $server_cpu us  wrk cpu/delivery $wrk_cpu us  requests $requests"
echo "$out" | grep -E 'Non-2xx|Socket errors' || true
if [ "$receiver" = auger ] && [ "${DRAIN:-0}" = 1 ]; then
  for _ in $(seq 1200); do
    depth=$(curl -s "$url/metrics" | awk '/^auger_inbox_depth/ {print $2}')
    [ "$depth" = 0 ] && break
    sleep 0.1
  done
  [ "$depth" = 0 ] || { echo "the worker did not drain the inbox within 120 s" >&2; exit 1; }
  t2=$(ticks)
  echo "  drained: cpu/delivery accepted and processed $(per_request "$(awk -v t=$((t2 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {print t / hz}')") us"
fi
if [ "$receiver" = auger ]; then
  metrics=$(curl -s "$url/metrics")
  echo "  appended $(echo "$metrics" | awk '/^auger_inbox_appended_total/ {print $2}')  fsyncs $(echo "$metrics" | awk '/^auger_inbox_fsyncs_total/ {print $2}')  peak RSS $(awk '/VmHWM/ {print $2}' "/proc/$pid/status") kB"
fi
echo "  machine: $machine"
