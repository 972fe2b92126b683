#!/usr/bin/env bash
# Open-loop latency at ~5,000 deliveries/s on a fresh server: the issue's "p99 at 5,000/s",
# alone, so builds can be alternated quickly. Starts `auger serve` (AUGER_BIN, default the
# `dist` build) on a new temp folder (DATA_DIR: a folder to make the server's data folder in
# instead, e.g. on tmpfs; only what the script made there is removed), posts
# the status fixture with `deliveries.lua` paced at 12.8 ms per connection over 64 connections,
# and prints p50, p99, the rate and the number of `fdatasync`s.
# Usage: benches/ingest/paced.sh [seconds, default 8]   (run it a few times, alternating builds)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
secs=${1:-8}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
if [ -z "${AUGER_BIN:-}" ]; then
  cargo build --profile dist --bin auger --manifest-path "$root/Cargo.toml" >/dev/null
fi
bin=${AUGER_BIN:-${CARGO_TARGET_DIR:-$root/target}/dist/auger}
work=$(mktemp -d)
data=$(mktemp -d -p "${DATA_DIR:-$work}")
mkdir -p "$work/policies" "$work/templates/web"
echo 'x: {{ vars.image }}' > "$work/templates/web/d.yaml.tera"
printf 'app = "hello"\nrepo = "Codertocat/Hello-World"\ntemplate = "web"\n[artifact]\nsignals = ["status:default"]\n[vars]\nimage = "x"\n' > "$work/policies/hello.toml"
printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n' "$data" > "$work/auger.toml"
body="$root/../shared/fixtures/webhooks/status.payload.json"
export AUGER_WEBHOOK_SECRET=bench-secret
sig="sha256=$(openssl dgst -sha256 -hmac "$AUGER_WEBHOOK_SECRET" -r "$body" | cut -d' ' -f1)"
cd "$work"
RUST_LOG=error "$bin" serve --config auger.toml > out 2>/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null && wait $pid 2>/dev/null; rm -rf "$work" "$data"' EXIT
for _ in $(seq 100); do grep -q listening out 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^auger listening on //p' out)
result=$(BODY="$body" SIG="$sig" PACE_MS=12.8 wrk -t2 -c64 -d"${secs}s" --latency \
  -s "$here/deliveries.lua" "$url/webhooks/github")
p50=$(echo "$result" | awk '$1 == "50%" {print $2}')
p99=$(echo "$result" | awk '$1 == "99%" {print $2}')
rate=$(echo "$result" | awk '/Requests\/sec/ {print $2}')
fsyncs=$(curl -s "$url/metrics" | awk '/^auger_inbox_fsyncs_total/ {print $2}')
echo "p50 $p50  p99 $p99  rate $rate/s  fsyncs $fsyncs"
