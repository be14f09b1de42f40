-- Handles one bot update exactly once: unless the update was seen in the last day, stores
-- the code handed out for it (its hash → the chat id) and marks the update seen, together.
-- A chat gets at most codes_per_hour codes an hour (its counter chat_key, the sliding window
-- of `hourlyCounter`): beyond it the update is marked seen and nothing is stored.
-- Returns {'ok'}, {'duplicate'}, {'limited'}, or {'taken'} (a live code has that hash: draw another)
if redis.call('EXISTS', update_key) == 1 then return {'duplicate'} end
local now = now_ms()
local v = redis.call('HMGET', chat_key, 'w', 'c', 'p')
local c, p, e = window({w = v[1], c = v[2], p = v[3]}, now, 'c', 'p')
if wait_ms(c, p, tonumber(codes_per_hour), e) > 0 then
  redis.call('SET', update_key, '1', 'EX', 86400)
  return {'limited'}
end
if redis.call('EXISTS', code_key) == 1 then return {'taken'} end
redis.call('SET', code_key, chat_id, 'EX', tonumber(lifetime_s))
redis.call('SET', update_key, '1', 'EX', 86400)
redis.call('HSET', chat_key, 'w', math.floor(now / H), 'c', c + 1, 'p', p)
redis.call('PEXPIRE', chat_key, 2 * H)
return {'ok'}
