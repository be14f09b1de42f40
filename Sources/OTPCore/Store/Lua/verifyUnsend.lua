-- Undoes a Twilio Verify send whose code was not delivered, if the verification is still the
-- one of sid: the send's own attempt is removed, and a verification left with none (a new one
-- nobody re-sent meanwhile) is deleted. A re-send that raced ahead and went out keeps the
-- verification and its code. When no gateway was
-- reached (give_back 1), the send and the cooldown are given back too, so the failure leaves
-- the `To`'s quotas as they were (the send was only allowed once the cooldown had passed).
-- Returns 1.
local v = redis.call('HMGET', verification_key, 'i', 'l', 'n')
if v[1] == sid then
  local kept, found = {}, false
  for attempt in string.gmatch(v[2], '[^;]+') do
    if not found and string.sub(attempt, 1, #attempt_sid + 1) == attempt_sid .. ',' then
      found = true
    else
      table.insert(kept, attempt)
    end
  end
  if #kept == 0 then
    redis.call('DEL', verification_key)
  elseif found then
    redis.call('HSET', verification_key, 'l', table.concat(kept, ';'), 'n', math.max(1, tonumber(v[3]) - 1))
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
