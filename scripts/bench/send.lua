-- register/otp or login/otp once for each phone numbered 0..N-1 (thread t takes t, t+T, …),
-- by voice call — the bench routes calls to the log gateway, which prints each code with its
-- otp_id — and stops after its share.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("BENCH_PATH")
local total = tonumber(os.getenv("BENCH_COUNT"))
local nthreads = tonumber(os.getenv("BENCH_THREADS"))

function init(args)
  next_index = id
  answered = 0
  share = math.floor(total / nthreads)
end

local function identifier(i)
  return string.format("+1555%07d", i)
end

function request()
  local i = next_index
  next_index = next_index + nthreads
  local who = identifier(i % total)
  return wrk.format("POST", path, {["Content-Type"] = "application/json"},
    '{"identifier":"' .. who .. '","channel":"call"}')
end

function response(status, headers, body)
  count(status)
  answered = answered + 1
  if answered >= share then wrk.thread:stop() end
end
