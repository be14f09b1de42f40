-- Shared by every bench script: counts 5xx answers per thread and prints one RESULT line.
-- RESULT <requests> <requests/s> <p50 ms> <p99 ms> <5xx> <socket errors>
threads = {}

-- Each thread gets its index as the global `id` (0, 1, …) before its init() runs.
function setup(thread)
  table.insert(threads, thread)
  thread:set("id", #threads - 1)
end

server_errors = 0

function count(status)
  if status >= 500 then server_errors = server_errors + 1 end
end

function done(summary, latency, requests)
  local server = 0
  for _, t in ipairs(threads) do server = server + (t:get("server_errors") or 0) end
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d %d\n", summary.requests,
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, server, e.connect + e.read + e.write + e.timeout))
end
