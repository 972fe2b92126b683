#!/usr/bin/env bash
# The paced ~5,000/s stream of paced.sh, timed per request by examples/paced_probe.rs, on a
# fresh server: percentiles, and when the slow requests happened (clusters per 100 ms, and the
# first 600 ms in detail). AUGER_BIN and DATA_DIR as in paced.sh; LOG sets the server's
# RUST_LOG, whose output is left in $PROBE_LOG (default /tmp/auger-probe.log) to line up with
# the printed start time.
# Usage: benches/ingest/probe.sh [seconds, default 8]
set -euo pipefail
secs=${1:-8}
source "$(dirname "$0")/common.sh"
cargo build --profile dist --example paced_probe --manifest-path "$root/Cargo.toml" >/dev/null
fresh_server "${LOG:-error}"
BODY="$body" SIG="$sig" "${CARGO_TARGET_DIR:-$root/target}/dist/examples/paced_probe" "${url#http://}" "$secs"
kill $pid && wait $pid 2>/dev/null || true
cp "$work/out" "${PROBE_LOG:-/tmp/auger-probe.log}"
