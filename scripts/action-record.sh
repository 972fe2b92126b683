#!/usr/bin/env bash
# Records an artifact through auger's API (POST /api/v1/artifacts): the step `action.yml` runs.
# The action's inputs arrive as INPUT_* variables (action.yml maps them), the rest comes from
# the runner's GITHUB_* variables. A non-2xx answer fails the step with auger's JSON `error`.
set -euo pipefail

fail() {
  # `::error::` makes the message an annotation on the run; plain text elsewhere.
  echo "::error::auger: $*" >&2
  exit 1
}

command -v jq >/dev/null || fail "jq is needed to build the request"
command -v curl >/dev/null || fail "curl is needed to send the request"

server="${INPUT_SERVER:-}"
token="${INPUT_TOKEN:-}"
app="${INPUT_APP:-}"
[ -n "$server" ] || fail "the input server is required (auger's base URL)"
[ -n "$token" ] || fail "the input token is required (an API token with artifacts:write)"
[ -n "$app" ] || fail "the input app is required"

sha="${INPUT_SHA:-${GITHUB_SHA:-}}"
[ -n "$sha" ] || fail "no commit: set the input sha (GITHUB_SHA is empty)"
repo="${INPUT_REPO:-${GITHUB_REPOSITORY:-}}"
# The ref that triggered the run counts only when it is of the right kind: a tag push has no
# branch, a branch push no tag.
branch="${INPUT_BRANCH:-}"
if [ -z "$branch" ] && [ "${GITHUB_REF_TYPE:-}" = "branch" ]; then
  branch="${GITHUB_REF_NAME:-}"
fi
tags="${INPUT_TAGS:-}"
if [ -z "$tags" ] && [ "${GITHUB_REF_TYPE:-}" = "tag" ]; then
  tags="${GITHUB_REF_NAME:-}"
fi

# The commit's time makes DORA lead times start at the commit rather than at the record; the
# checkout has it when the job checked the commit out (actions/checkout does).
committed="${INPUT_COMMITTED:-}"
if [ -z "$committed" ] && command -v git >/dev/null; then
  committed=$(git -C "${GITHUB_WORKSPACE:-.}" log -1 --format=%cI "$sha" -- 2>/dev/null || true)
fi

# vars: one KEY=VALUE a line; the value is everything after the first '='.
vars='{}'
line_no=0
while IFS= read -r line || [ -n "$line" ]; do
  line_no=$((line_no + 1))
  line="${line%$'\r'}"
  [ -n "${line//[[:space:]]/}" ] || continue
  case "$line" in
    *=*) ;;
    *) fail "vars line $line_no is not KEY=VALUE: $line" ;;
  esac
  key="${line%%=*}"
  key="${key#"${key%%[![:space:]]*}"}"
  key="${key%"${key##*[![:space:]]}"}"
  [ -n "$key" ] || fail "vars line $line_no has no key: $line"
  vars=$(jq -c --arg k "$key" --arg v "${line#*=}" '. + {($k): $v}' <<<"$vars")
done <<<"${INPUT_VARS:-}"

# tags: separated by newlines, commas or spaces.
tags_json=$(printf '%s' "$tags" | jq -R -s -c '[splits("[,\\s]+") | select(length > 0)]')

body=$(jq -n -c \
  --arg app "$app" --arg sha "$sha" --arg repo "$repo" --arg branch "$branch" \
  --arg committed "$committed" --argjson tags "$tags_json" --argjson vars "$vars" \
  '{app: $app, sha: $sha, vars: $vars}
   + (if $repo != "" then {repo: $repo} else {} end)
   + (if $committed != "" then {committed: $committed} else {} end)
   + (if $branch != "" then {branch: $branch} else {} end)
   + (if ($tags | length) > 0 then {tags: $tags} else {} end)')

answer=$(mktemp)
trap 'rm -f "$answer"' EXIT
# The token goes in through a file descriptor, not the command line other processes can read.
code=$(curl -sS -o "$answer" -w '%{http_code}' -X POST "${server%/}/api/v1/artifacts" \
  -H @<(printf 'Authorization: Bearer %s\n' "$token") \
  -H "Content-Type: application/json" \
  --data-binary "$body") || fail "cannot reach $server"

case "$code" in
  2??) ;;
  *)
    error=$(jq -r '.error // empty' "$answer" 2>/dev/null || true)
    fail "HTTP $code: ${error:-$(head -c 500 "$answer")}"
    ;;
esac

id=$(jq -r '.artifact.id // empty' "$answer")
echo "auger recorded artifact $id"
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "id=$id" >>"$GITHUB_OUTPUT"
fi
