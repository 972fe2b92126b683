#!/usr/bin/env bash
# Ingest on the PostgreSQL queue beside the embedded journal (issue 22's benchmark): the same
# wrk load (the real 12 KB status fixture, signed, a fresh delivery id per request) against two
# servers that differ only in `[server] queue`. The journal answers after its group-commit
# fsync, the PostgreSQL queue after the row's INSERT is committed (synchronous_commit on; the
# throwaway cluster of scripts/postgres, on this machine's disk). Runs alternate over ROUNDS.
# Usage: benches/ingest/queue.sh [seconds per run, default 8] (env ROUNDS, default 2; CONNS,
# default 64; AUGER_BIN: binary to measure)
set -euo pipefail
secs=${1:-8}
rounds=${ROUNDS:-2}
conns=${CONNS:-64}
source "$(dirname "$0")/common.sh"

work=$(mktemp -d)
pids=()
pg_dir=
stop_all() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  [ -n "$pg_dir" ] && "$root/scripts/postgres" stop "$pg_dir" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap stop_all EXIT

eval "$("$root/scripts/postgres" start)"
pg_dir=$AUGER_TEST_PG_DIR
# The benchmark's cluster keeps fsync on: the 2xx must mean "committed", as in production.
runuser_or_self() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# (The last setting in the file wins over the test settings above it.)
printf 'fsync = on\nsynchronous_commit = on\nfull_page_writes = on\n' >> "$pg_dir/data/postgresql.conf"
runuser_or_self "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/server.log" -w restart >/dev/null
export AUGER_QUEUE_URL=$AUGER_TEST_DATABASE_URL
echo "postgres: $(runuser_or_self "$pg_bin/postgres" --version) ($(grep -E '^(fsync|synchronous_commit)' "$pg_dir/data/postgresql.conf" | tail -n 2 | tr '\n' ' '))"

git init -q --bare "$work/ledger-remote.git"
declare -A urls
for kind in journal postgres; do
  server_folder "$work/$kind" "$work/$kind/data"
  if [ "$kind" = postgres ]; then
    printf 'queue = "postgres"\n[artifacts]\nremote = "file://%s"\n' "$work/ledger-remote.git" >> "$work/$kind/auger.toml"
  fi
  start_server "$work/$kind" warn
  pids+=("$pid")
  urls[$kind]=$url
done
echo "journal ${urls[journal]}  postgres ${urls[postgres]}  ($conns connections, ${secs}s runs)"

run() { # KIND
  echo "== $1"
  BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c"$conns" -d"${secs}s" --latency \
    -s "$here/deliveries.lua" "${urls[$1]}/webhooks/github" | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'
}
for r in $(seq "$rounds"); do
  if (( r % 2 )); then run journal; run postgres; else run postgres; run journal; fi
done
for kind in journal postgres; do
  echo "$kind: $(curl -s "${urls[$kind]}/metrics" | grep -E '^auger_webhook_deliveries_total\{event="status",outcome="queued"\}' | tr '\n' ' ')"
done
