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

-- Monotonic seconds (wrk's Lua is LuaJIT: clock_gettime through its FFI).
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *ts);
]]
local timespec = ffi.new("bench_timespec")
function now()
  ffi.C.clock_gettime(1, timespec)
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) / 1e9
end

-- A thread that stops before the run's time is up (wrk.thread:stop()) sets the globals
-- `first` and `last` (the times of its first request and last answer): the requests per second
-- are then taken over the time the threads were busy, not wrk's whole -d.
function done(summary, latency, requests)
  local server = 0
  local started, ended
  for _, t in ipairs(threads) do
    server = server + (t:get("server_errors") or 0)
    local first, last = t:get("first"), t:get("last")
    if first and last then
      started = math.min(started or first, first)
      ended = math.max(ended or last, last)
    end
  end
  local seconds = summary.duration / 1e6
  if started and ended and ended > started then seconds = ended - started end
  local e = summary.errors
  io.write(string.format("RESULT %d %.1f %.3f %.3f %d %d\n", summary.requests,
    summary.requests / seconds, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, server, e.connect + e.read + e.write + e.timeout))
end
