-- Checks a channel-API code: right consumes it; wrong uses an attempt, and the one that
-- reaches the maximum kills it.
-- Returns {'ok'}, {'invalid', attempts remaining} or {'not_found'}
local code = redis.call('HMGET', code_key, 'h', 'a')
if not code[1] then return {'not_found'} end
local attempts, max = tonumber(code[2]), tonumber(max_attempts)
if attempts >= max then
  redis.call('DEL', code_key)
  return {'not_found'}
end
if same(code[1], code_hash) then
  redis.call('DEL', code_key)
  return {'ok'}
end
attempts = attempts + 1
if attempts >= max then redis.call('DEL', code_key) else redis.call('HSET', code_key, 'a', attempts) end
return {'invalid', max - attempts}
