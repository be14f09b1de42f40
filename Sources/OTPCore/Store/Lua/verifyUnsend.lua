-- Undoes a Twilio Verify send whose code was not delivered, if the verification is still the
-- one of sid: a new verification is deleted, a re-send's attempt removed. When no gateway was
-- reached (give_back 1), the send and the cooldown are given back too, so the failure leaves
-- the `To`'s quotas as they were (the send was only allowed once the cooldown had passed).
-- Returns 1.
local v = redis.call('HMGET', verification_key, 'i', 'l', 'n')
if v[1] == sid then
  if resent == '1' then
    local head, tail = string.match(v[2], '^(.*);([^;]*)$')
    if tail and string.sub(tail, 1, #attempt_sid + 1) == attempt_sid .. ',' then
      redis.call('HSET', verification_key, 'l', head, 'n', math.max(1, tonumber(v[3]) - 1))
    end
  else
    redis.call('DEL', verification_key)
  end
end
if give_back == '1' then
  local now = now_ms()
  local q = load_quota(to_quota_key)
  local sc, sp = window(q, now, 'sc', 'sp')
  local fc, fp = window(q, now, 'fc', 'fp')
  save_quota(to_quota_key, to_quota_key, now, {sc = math.max(0, sc - 1), sp = sp, fc = fc, fp = fp, n = 0, cf = q.cf, lk = q.lk})
end
return 1
