# Shared by the ingest benchmarks (sourced, not run): the signed fixture, a server folder, and
# starting `auger serve` on it.
# Sets: here, root, bin (AUGER_BIN, or the `dist` build, built when a server first starts), body,
# sig.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
# AUGER_BIN: measure another build (e.g. an earlier commit's) with the same script.
bin=${AUGER_BIN:-${CARGO_TARGET_DIR:-$root/target}/dist/auger}
body="$root/tests/fixtures/webhooks/status.payload.json"
export AUGER_WEBHOOK_SECRET=bench-secret
sig="sha256=$(openssl dgst -sha256 -hmac "$AUGER_WEBHOOK_SECRET" -r "$body" | cut -d' ' -f1)"

# server_folder DIR DATA_DIR: a policy for the fixture's repository (status signals), its
# template, and an auger.toml listening on a free loopback port with its data in DATA_DIR.
server_folder() {
  mkdir -p "$1/policies" "$1/templates/web"
  echo 'x: {{ vars.image }}' > "$1/templates/web/d.yaml.tera"
  printf 'app = "hello"\nrepo = "Codertocat/Hello-World"\ntemplate = "web"\n[artifact]\nsignals = ["status:default"]\n[vars]\nimage = "x"\n' > "$1/policies/hello.toml"
  printf '[server]\nlisten = "127.0.0.1:0"\ndata_dir = "%s"\n' "$2" > "$1/auger.toml"
}

# build_auger: builds the `dist` binary unless AUGER_BIN names one.
build_auger() {
  [ -n "${AUGER_BIN:-}" ] || cargo build --profile dist --bin auger --manifest-path "$root/Cargo.toml" >/dev/null
}

# cleanup PATH...: stops the process in $pid (if any, whatever its exit status) and removes the
# PATHs; what the scripts' EXIT traps run.
cleanup() {
  if [ -n "${pid:-}" ]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$@"
}

# build_c_receiver OUT: compiles the bare C receiver (bare_receiver.c) to OUT; fails without gcc
# or OpenSSL's headers (libssl-dev).
build_c_receiver() {
  gcc -O2 -o "$1" "$here/bare_receiver.c" -lcrypto 2>/dev/null
}

# await_listening FILE: waits until a server's output FILE says "... listening on URL" and
# prints the URL.
await_listening() {
  for _ in $(seq 100); do grep -q listening "$1" 2>/dev/null && break; sleep 0.1; done
  sed -n 's/.* listening on //p' "$1"
}

# start_receiver OUT COMMAND...: starts a receiver that prints "... listening on URL" to OUT and
# waits for that line. Sets pid and url.
start_receiver() {
  local out=$1
  shift
  "$@" > "$out" 2>&1 &
  pid=$!
  url=$(await_listening "$out")
}

# start_server DIR [RUST_LOG]: starts `auger serve` in DIR (output in DIR/out) and waits until
# it listens. Sets pid and url.
start_server() {
  build_auger
  start_receiver "$1/out" env -C "$1" RUST_LOG="${2:-error}" "$bin" serve --config auger.toml
}

# fresh_server [RUST_LOG]: `auger serve` on a new temp folder, its data in a new folder under
# DATA_DIR (e.g. /dev/shm) or inside the temp folder; stopped and both removed on exit. Sets
# work, data, pid and url.
fresh_server() {
  work=$(mktemp -d)
  data=$(mktemp -d -p "${DATA_DIR:-$work}")
  pid=
  trap 'cleanup "$work" "$data"' EXIT
  server_folder "$work" "$data"
  start_server "$work" "${1:-error}"
}
