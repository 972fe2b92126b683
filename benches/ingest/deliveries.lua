-- wrk script: POST the same signed status payload with a fresh X-GitHub-Delivery per request,
-- so every request is a new delivery that must reach the inbox (and its fsync) before the 2xx.
-- Env: BODY (payload file), SIG (its sha256= signature), PACE_MS (optional per-connection
-- delay between requests, to hold a fixed rate).
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BODY"), "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
  wrk.headers["X-GitHub-Event"] = "status"
  wrk.headers["X-Hub-Signature-256"] = os.getenv("SIG")
  prefix = string.format("bench-%d-%d-", os.time(), tid)
  n = 0
  pace = tonumber(os.getenv("PACE_MS") or "0")
end

function request()
  n = n + 1
  wrk.headers["X-GitHub-Delivery"] = prefix .. n
  return wrk.format()
end

function delay()
  return pace
end

function response(status, headers, body)
  if status ~= 202 and status ~= 200 then
    errors_seen = (errors_seen or 0) + 1
  end
end
