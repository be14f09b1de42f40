-- login/otp for the existing phone users numbered 0..N-1 (round robin), by SMS: delivery goes
-- through the webhook gateway — libcurl — to a local sink.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local total = tonumber(os.getenv("BENCH_COUNT"))
local nthreads = tonumber(os.getenv("BENCH_THREADS"))

function init(args)
  next_index = id
end

function request()
  local i = next_index % total
  next_index = next_index + nthreads
  return wrk.format("POST", os.getenv("BENCH_PATH"), {["Content-Type"] = "application/json"},
    string.format('{"identifier":"+1555%07d"}', i))
end

function response(status, headers, body) count(status) end
