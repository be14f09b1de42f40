-- Rotates a refresh token within its session (family). The presented token is marked
-- rotated and its child stored; the child is derived from the parent by the caller, so a
-- retry of the same refresh names the same child. Presenting a rotated token again within
-- the reuse interval while its child is unused answers that child again (a retried or
-- concurrent refresh); any other reuse revokes the family. A session ends
-- `session max` after its sign-in however often it rotates, and answers at most
-- `refreshes per hour` times an hour (retries included: each mints an access token).
-- Returns {'ok', child ttl s, user fields…}, {'invalid'}, {'reused'} or {'rate', s}
local token = redis.call('HMGET', presented_key, 'f', 's', 't')
if not token[1] then return {'invalid'} end
local family = family_prefix .. token[1]
local session = redis.call('HMGET', family, 'u', 't0', 'w', 'sc', 'sp')
if not session[1] then return {'invalid'} end
local now = now_ms()
local ends = tonumber(session[2]) + tonumber(session_max_s) * 1000
-- sr: a password reset ended every session that started before it (ms)
local revoked = redis.call('HMGET', user_key, 'id', 'sr')
if now >= ends or not revoked[1] or tonumber(session[2]) < tonumber(revoked[2] or '0') then
  redis.call('DEL', family)
  return {'invalid'}
end
-- every answer that mints an access token, a retry's too, counts against the hour
local sc, sp, e = window({w = session[3], sc = session[4], sp = session[5]}, now, 'sc', 'sp')
local function count() redis.call('HSET', family, 'w', math.floor(now / H), 'sc', sc + 1, 'sp', sp) end
if token[2] ~= 'a' then
  local child = redis.call('HMGET', child_key, 'f', 's')
  if now - tonumber(token[3] or '0') < tonumber(reuse_interval_ms) and child[1] == token[1] and child[2] == 'a' then
    local wait = wait_ms(sc, sp, tonumber(refreshes_per_hour), e)
    if wait > 0 then return {'rate', seconds(wait)} end
    count()
    return user_reply(user_key, math.max(1, math.floor(redis.call('PTTL', child_key) / 1000)))
  end
  redis.call('DEL', family)
  return {'reused'}
end
local wait = wait_ms(sc, sp, tonumber(refreshes_per_hour), e)
if wait > 0 then return {'rate', seconds(wait)} end
local ttl = math.min(tonumber(refresh_ttl_s), math.floor((ends - now) / 1000))
if ttl < 1 then
  redis.call('DEL', family)
  return {'invalid'}
end
redis.call('HSET', presented_key, 's', 'r', 't', now)
redis.call('HSET', child_key, 'f', token[1], 's', 'a')
redis.call('EXPIRE', child_key, ttl)
count()
redis.call('EXPIRE', family, ttl)
return user_reply(user_key, ttl)
