#!/usr/bin/env bash
# Controller report ingest beside GitHub webhook ingest, same server, same load tool (issue 19's
# benchmark): wrk posts signed Flux events (every body different, so none is deduplicated) to
# POST /webhooks/flux, and the real 12 KB status fixture with fresh delivery ids to
# POST /webhooks/github, alternating the order over ROUNDS rounds. Both are verified, parsed,
# appended to the inbox and fsync'd (group commit) before their 2xx.
# Usage: benches/ingest/reports.sh [seconds per run, default 8] (env ROUNDS, default 2; CONNS,
# default 64; AUGER_BIN: binary to measure)
set -euo pipefail
secs=${1:-8}
rounds=${ROUNDS:-2}
conns=${CONNS:-64}
source "$(dirname "$0")/common.sh"
export AUGER_FLUX_SECRET=bench-flux-secret

work=$(mktemp -d)
pid=
trap 'cleanup "$work"' EXIT
server_folder "$work" data
printf '[verify]\nflux_secret_env = "AUGER_FLUX_SECRET"\n' >> "$work/auger.toml"
# Distinct signed events for each Flux run (a body seen before would be a cheaper duplicate):
# more than the fastest rate seen here (~65,000/s) can post in one run.
events() { # FILE OFFSET COUNT
python3 - "$1" "$AUGER_FLUX_SECRET" "$2" "$3" <<'PY'
import hashlib, hmac, json, sys
out, secret, first, n = sys.argv[1], sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
with open(out, "w") as f:
    for i in range(first, first + n):
        sha = hashlib.sha1(str(i).encode()).hexdigest()
        event = {
            "involvedObject": {"kind": "Kustomization", "namespace": "flux-system", "name": "apps-staging",
                               "uid": "7d0cdc51-ddcf-4743-b223-83ca5c699632",
                               "apiVersion": "kustomize.toolkit.fluxcd.io/v1", "resourceVersion": str(i)},
            "severity": "info", "timestamp": "2026-12-05T10:15:02Z",
            "message": "Reconciliation finished in 2.41s, next run in 10m0s", "reason": "ReconciliationSucceeded",
            "metadata": {"revision": "main@sha1:" + sha, "commit_status": "update"},
            "reportingController": "kustomize-controller",
            "reportingInstance": "kustomize-controller-7c7b47f5f-8bhrp",
        }
        body = json.dumps(event, separators=(",", ":"))
        sig = "sha256=" + hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
        f.write(sig + "\t" + body + "\n")
PY
}
per_run=$(( secs * 100000 ))
start_server "$work" warn
echo "server $url  pid $pid  ($per_run distinct Flux events per run, $conns connections, ${secs}s runs)"
run_no=0
flux() {
  run_no=$(( run_no + 1 ))
  events "$work/reports.tsv" $(( run_no * per_run )) "$per_run"
  echo "== POST /webhooks/flux"
  THREADS=2 REPORTS="$work/reports.tsv" wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/reports.lua" \
    "$url/webhooks/flux" | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'
}
github() {
  echo "== POST /webhooks/github"
  BODY="$body" SIG="$sig" PACE_MS=0 wrk -t2 -c"$conns" -d"${secs}s" --latency \
    -s "$here/deliveries.lua" "$url/webhooks/github" | grep -E 'Requests/sec|50%|99%|Non-2xx|Socket errors'
}
for r in $(seq "$rounds"); do
  if (( r % 2 )); then flux; github; else github; flux; fi
done
echo "inbox: $(curl -s "$url/metrics" | grep -E '^auger_(inbox_appended_total|reports_total)' | tr '\n' ' ')"
