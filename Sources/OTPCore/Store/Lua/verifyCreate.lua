-- Creates a Twilio Verify verification for a `To`, or re-sends the pending one: the same sid
-- (and so the same code), one more send attempt. Under the `To`'s quotas (lockout, cooldown,
-- sends per hour) as every send; a verification sent max_sends times refuses more. A dead
-- one (its check attempts spent) is replaced by a new one.
-- Verification fields: i sid, h code hash, a wrong checks, t To, c channel, d created (ms),
-- u updated (ms), l send attempts ("attempt sid,channel,ms" joined by ';'), n sends.
-- Returns {'created' or 'resent', sid, created ms, updated ms, attempts, To}, {'locked', s},
--         {'cooldown', s}, {'rate_limited', s} or {'max_sends', s}
local now = now_ms()
local q = load_quota(to_quota_key)
local lockout = lock_wait(q, now)
if lockout > 0 then return {'locked', seconds(lockout)} end
local v = redis.call('HMGET', verification_key, 'i', 'd', 'l', 'n', 'a', 't')
local pending = v[1] and tonumber(v[5]) < tonumber(max_attempts)
if pending and tonumber(v[4]) >= tonumber(max_sends) then
  return {'max_sends', seconds(redis.call('PTTL', verification_key))}
end
if q.n > now then return {'cooldown', seconds(q.n - now)} end
local sc, sp, e = window(q, now, 'sc', 'sp')
local wait = wait_ms(sc, sp, tonumber(sends_per_hour), e)
if wait > 0 then return {'rate_limited', seconds(wait)} end
local fc, fp = window(q, now, 'fc', 'fp')
save_quota(to_quota_key, to_quota_key, now,
  {sc = sc + 1, sp = sp, fc = fc, fp = fp, n = now + tonumber(cooldown_ms), cf = q.cf, lk = q.lk})
local attempt = attempt_sid .. ',' .. channel .. ',' .. now
if pending then
  local list = v[3] .. ';' .. attempt
  redis.call('HSET', verification_key, 'l', list, 'n', tonumber(v[4]) + 1, 'u', now, 'c', channel)
  return {'resent', v[1], tonumber(v[2]), now, list, v[6]}
end
redis.call('DEL', verification_key)
redis.call('HSET', verification_key, 'i', sid, 'h', code_hash, 'a', 0, 't', to, 'c', channel, 'd', now, 'u', now,
  'l', attempt, 'n', 1)
redis.call('PEXPIRE', verification_key, tonumber(ttl_ms))
return {'created', sid, now, now, attempt, to}
