-- Lifts an identifier's lockouts (`otpd user unlock`): the count of wrong codes (and wrong
-- passwords) in a row and the lock, wherever its quotas live.
-- Returns 1 when it was locked, else 0.
local now = now_ms()
local was = 0
for _, key in ipairs({user_key, own_quota_key, failures_key}) do
  local lk = tonumber(redis.call('HGET', key, 'lk') or '0')
  if lk > now then was = 1 end
  if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'cf', 0, 'lk', 0) end
end
return was
