-- tokens/refresh: each thread rotates its own tokens from $BENCH_TOKENS.<thread>; every
-- answer's new token goes back into the thread's queue, so no token is presented twice.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")

function init(args)
  queue = {}
  head, tail = 1, 0
  for line in io.lines(os.getenv("BENCH_TOKENS") .. "." .. id) do
    tail = tail + 1
    queue[tail] = line
  end
end

function request()
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return wrk.format("POST", os.getenv("BENCH_PATH"), {["Content-Type"] = "application/json"},
    '{"refresh_token":"' .. token .. '"}')
end

function response(status, headers, body)
  count(status)
  local token = body:match('"refresh_token":"([^"]+)"')
  if token then
    tail = tail + 1
    queue[tail] = token
  end
end
