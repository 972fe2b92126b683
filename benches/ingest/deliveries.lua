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
  local body = f:read("*a")
  f:close()
  local headers = {
    ["Content-Type"] = "application/json",
    ["User-Agent"] = "GitHub-Hookshot/bench",
    ["X-GitHub-Event"] = "status",
    ["X-Hub-Signature-256"] = os.getenv("SIG"),
    ["X-GitHub-Delivery"] = "@@ID@@",
  }
  -- The request is formatted once and split at the delivery id, so each request costs the
  -- client two concatenations instead of a full wrk.format of 12 KB (the client shares the
  -- server's two cores).
  local req = wrk.format("POST", nil, headers, body)
  local i, j = string.find(req, "@@ID@@", 1, true)
  head = string.sub(req, 1, i - 1) .. string.format("bench-%d-%d-", os.time(), tid)
  tail = string.sub(req, j + 1)
  n = 0
  pace = tonumber(os.getenv("PACE_MS") or "0")
  math.randomseed(os.time() + tid)
end

function request()
  n = n + 1
  return head .. n .. tail
end

-- Each connection waits a random 0.5–1.5 × PACE_MS between requests (mean PACE_MS): with a
-- fixed delay the 64 connections, all started at once, stay in step and send 64-request bursts
-- every PACE_MS instead of a steady rate. The jitter spreads them into an even stream.
function delay()
  if pace == 0 then
    return 0
  end
  return pace * (0.5 + math.random())
end

-- No response() callback: wrk then skips building a Lua table per response, and counts
-- non-2xx answers itself ("Non-2xx or 3xx responses").
