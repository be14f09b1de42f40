-- Checks a code against a Twilio Verify verification (by its `To`, or by its sid when sid is
-- not empty), under the `To`'s quotas as every check (judge_code): a right code consumes it,
-- so it is approved at most once; a wrong one uses an attempt.
-- Returns {'ok', sid, To, channel, created ms, now ms},
--         {'invalid', attempts remaining, locked now 1/0, sid, To, channel, created ms, now ms},
--         {'not_found'}, {'exhausted', s}, {'identifier_locked', s} or {'locked', s}
local v = redis.call('HMGET', verification_key, 'i', 't', 'c', 'd')
local refusal, accepted = judge_code(verification_key, to_quota_key, to_quota_key, {
  suffix = sid, hash = code_hash, failures_per_hour = tonumber(failures_per_hour),
  max_attempts = tonumber(max_attempts), sends_per_hour = tonumber(sends_per_hour),
  max_in_a_row = tonumber(max_in_a_row), lockout_ms = tonumber(lockout_ms)})
if refusal then
  if refusal[1] == 'invalid' then
    for _, value in ipairs({v[1], v[2], v[3], tonumber(v[4]), now_ms()}) do table.insert(refusal, value) end
  end
  return refusal
end
accepted()
return {'ok', v[1], v[2], v[3], tonumber(v[4]), now_ms()}
