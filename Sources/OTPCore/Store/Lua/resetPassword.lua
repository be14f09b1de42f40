-- Checks a password-reset code and, when it is right, stores the new password's hash in
-- the same step: the code is consumed, an unverified user becomes active (the code proved
-- the address), and every session that started before now ends (`sr`). Wrong codes count
-- as in `activate` (attempts, hourly failures, failures in a row and the lockout).
--
-- Without a password hash ('') the code is only judged: a wrong one counts as above, a right
-- one is kept and answers ok (the caller then hashes the password, which it does only for
-- a code Redis accepted, and calls again with the hash).
-- Returns {'ok'}, {'not_found'}, {'invalid', attempts remaining, locked now 1/0},
--         {'exhausted', s}, {'identifier_locked', s} or {'locked', s}
local judge_only = password_hash == ''
local refusal, accepted = judge_code(otp_key, user_key, own_quota_key, {
  suffix = '', hash = code_hash, failures_per_hour = tonumber(failures_per_hour),
  max_attempts = tonumber(max_attempts), sends_per_hour = tonumber(sends_per_hour),
  max_in_a_row = tonumber(max_in_a_row), lockout_ms = tonumber(lockout_ms), keep = judge_only})
if refusal then return refusal end
local status = redis.call('HGET', user_key, 'status')
if not status then return {'not_found'} end
accepted()
if judge_only then return {'ok'} end
redis.call('HSET', user_key, 'pw', password_hash, 'sr', now_ms())
if status == 'unverified' then
  redis.call('HSET', user_key, 'status', 'active')
  redis.call('PERSIST', user_key)
end
return {'ok'}
