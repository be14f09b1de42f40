-- One hourly counter with a key (and hash tag) of its own: a client IP's sends, a client
-- IP's failed verifications, an app's SMS and calls. Taken before the action it guards and
-- given back (`giveBack`) when the action did not happen, so concurrent requests never
-- exceed the limit. Returns {'ok'} or {'rate', s}
local now = now_ms()
local v = redis.call('HMGET', counter_key, 'w', 'c', 'p')
local c, p, e = window({w = v[1], c = v[2], p = v[3]}, now, 'c', 'p')
local wait = wait_ms(c, p, tonumber(limit), e)
if wait > 0 then return {'rate', seconds(wait)} end
-- Within the hour the key was last written in, one increment; else the window moves. The key
-- expires 2 h after the first unit of its hour, when that hour's count stops mattering.
local hour = math.floor(now / H)
if tonumber(v[1] or '-1') == hour then
  redis.call('HINCRBY', counter_key, 'c', 1)
else
  redis.call('HSET', counter_key, 'w', hour, 'c', c + 1, 'p', p)
  redis.call('PEXPIRE', counter_key, 2 * H)
end
return {'ok'}
