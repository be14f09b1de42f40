-- otp/activate over a pool of pending OTPs ("<otp_id> <right code> <wrong code>" lines in
-- $BENCH_POOL). BENCH_MODE=right: each OTP once, in order, with its code (each thread its own
-- slice; a thread stops once its slice is answered, as past it it would only measure 404s).
-- BENCH_MODE=wrong: random OTPs with a wrong code. Right answers' refresh tokens are
-- written to $BENCH_OUT.<thread> for the refresh run.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local mode = os.getenv("BENCH_MODE")
local nthreads = tonumber(os.getenv("BENCH_THREADS"))

function init(args)
  pool = {}
  local n = 0
  for line in io.lines(os.getenv("BENCH_POOL")) do
    n = n + 1
    if mode == "wrong" or n % nthreads == id then
      local otp, right, wrong = line:match("(%S+) (%S+) (%S+)")
      table.insert(pool, {otp, right, wrong})
    end
  end
  position = 0
  answered = 0
  math.randomseed(id * 7919 + 17)
  if mode == "right" then out = io.open(os.getenv("BENCH_OUT") .. "." .. id, "w") end
end

function request()
  local entry
  if mode == "right" then
    if position == 0 then first = now() end
    position = position + 1
    entry = pool[position] or pool[#pool]
  else
    entry = pool[math.random(#pool)]
  end
  local code = mode == "right" and entry[2] or entry[3]
  return wrk.format("POST", os.getenv("BENCH_PATH"), {["Content-Type"] = "application/json"},
    '{"otp_id":"' .. entry[1] .. '","otp":"' .. code .. '"}')
end

function response(status, headers, body)
  count(status)
  answered = answered + 1
  if mode == "right" then
    last = now()
    if answered >= #pool then wrk.thread:stop() end
  end
  if out and status == 200 then
    local token = body:match('"refresh_token":"([^"]+)"')
    if token then out:write(token, "\n") end
  end
end
