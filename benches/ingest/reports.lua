-- wrk script: POST pre-signed Flux events (one per line of REPORTS: "<X-Signature>\t<body>"),
-- each body different, so every request is a new report that must reach the inbox (and its
-- fsync) before the 202 rather than a deduplicated one. Threads take disjoint lines.
local threads = {}
local next_id = 0

function setup(thread)
  next_id = next_id + 1
  thread:set("tid", next_id)
  table.insert(threads, thread)
end

function init(args)
  -- THREADS: wrk's -t (a thread cannot learn how many were set up after it).
  local nthreads = tonumber(os.getenv("THREADS"))
  reqs = {}
  local i = 0
  for line in io.lines(os.getenv("REPORTS")) do
    i = i + 1
    if i % nthreads == tid - 1 then
      local sig, body = line:match("^([^\t]+)\t(.*)$")
      reqs[#reqs + 1] = wrk.format("POST", nil, {
        ["Content-Type"] = "application/json",
        ["X-Signature"] = sig,
      }, body)
    end
  end
  n = 0
end

function request()
  n = n + 1
  if n > #reqs then
    n = 1
  end
  return reqs[n]
end
