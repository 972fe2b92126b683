#!/usr/bin/env bash
# Server CPU per delivery: a less noisy figure than throughput on a shared 2-core machine.
# Starts `auger serve` (AUGER_BIN, default the `dist` build), saturates it for 5 s with the
# ingest wrk script at 64 connections, and prints throughput, the server's CPU time (user +
# system, from /proc) divided by the deliveries appended, the fsync count and peak RSS.
# Usage: benches/ingest/cpu_per_delivery.sh   (run it a few times, alternating builds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -z "${AUGER_BIN:-}" ]; then
  cargo build --profile dist --bin auger --manifest-path "$root/Cargo.toml" >/dev/null
fi
bin=${AUGER_BIN:-${CARGO_TARGET_DIR:-$root/target}/dist/auger}
work=$(mktemp -d)
mkdir -p "$work/policies" "$work/templates/web"
echo 'x: {{ vars.image }}' > "$work/templates/web/d.yaml.tera"
printf 'app = "hello"\nrepo = "Codertocat/Hello-World"\ntemplate = "web"\n[artifact]\nsignals = ["status:default"]\n[vars]\nimage = "x"\n' > "$work/policies/hello.toml"
printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "data"\n' > "$work/auger.toml"
body="$root/../shared/fixtures/webhooks/status.payload.json"
export AUGER_WEBHOOK_SECRET=bench-secret
sig="sha256=$(openssl dgst -sha256 -hmac "$AUGER_WEBHOOK_SECRET" -r "$body" | cut -d' ' -f1)"
cd "$work"
RUST_LOG=error "$bin" serve --config auger.toml > out 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do grep -q listening out 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^auger listening on //p' out)
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
