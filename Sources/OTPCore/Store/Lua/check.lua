-- Checks a code without consuming it (the hub's `otp.verify`): the same guards and the same
-- accounting of a wrong code as `activate`; a right code stores a proof (the hash of a new
-- secret) in the OTP, replacing any earlier one, for `activate` to require. The proof lives
-- as long as the OTP. conceal_unknown_user (1/0) judges an unknown user's decoy OTP.
-- Returns {'ok', expires at (Unix ms)}, {'no_user'}, {'not_found'},
--         {'invalid', attempts remaining, locked now 1/0}, {'exhausted', s},
--         {'identifier_locked', s} or {'locked', s}
local exists = redis.call('EXISTS', user_key) == 1
if not exists and conceal_unknown_user ~= '1' then return {'no_user'} end
if required_proof_hash ~= '' and not same(redis.call('HGET', otp_key, 'v'), required_proof_hash) then
  return {'not_found'}
end
local refusal, accepted = judge_code(otp_key, user_key, own_quota_key, {
  suffix = otp_suffix, hash = code_hash, failures_per_hour = tonumber(failures_per_hour),
  max_attempts = tonumber(max_attempts), sends_per_hour = tonumber(sends_per_hour),
  max_in_a_row = tonumber(max_in_a_row), lockout_ms = tonumber(lockout_ms), keep = true})
if refusal then return refusal end
if not exists then return {'not_found'} end
accepted()
if proof_hash ~= '' then redis.call('HSET', otp_key, 'v', proof_hash) end
local left = redis.call('PTTL', otp_key)
return {'ok', now_ms() + math.max(0, left)}
