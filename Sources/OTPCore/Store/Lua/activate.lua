-- Checks a code. Right: the OTP is consumed, the user activated and signed in, the count of
-- wrong codes in a row reset, and a refresh token and its family (a session) stored. Wrong:
-- one attempt, one hourly failure and one consecutive failure used; the one that reaches
-- the maximum in a row locks the identifier. With a proof (the hub's `set_password`), the
-- OTP must hold that proof (`otp.verify` stored it) or it answers not found, and the right
-- code also stores the given password hash in the user's `pw`.
-- Returns {'ok', refresh ttl s, user fields…}, {'not_found'},
--         {'invalid', attempts remaining, locked now 1/0}, {'exhausted', s until a new code
--         may be sent}, {'identifier_locked', s} or {'locked', s}
if proof_hash ~= '' and not same(redis.call('HGET', otp_key, 'v'), proof_hash) then return {'not_found'} end
local refusal, accepted = judge_code(otp_key, user_key, own_quota_key, {
  suffix = otp_suffix, hash = code_hash, failures_per_hour = tonumber(failures_per_hour),
  max_attempts = tonumber(max_attempts), sends_per_hour = tonumber(sends_per_hour),
  max_in_a_row = tonumber(max_in_a_row), lockout_ms = tonumber(lockout_ms)})
if refusal then return refusal end
local status = redis.call('HGET', user_key, 'status')
if not status then return {'not_found'} end
accepted()
if status == 'unverified' then
  redis.call('HSET', user_key, 'status', 'active')
  redis.call('PERSIST', user_key)
end
-- a new password ends every earlier session, as a reset does (sr)
if password_hash ~= '' then redis.call('HSET', user_key, 'pw', password_hash, 'sr', now_ms()) end
local ttl = start_session(user_key, token_key, family_key, family_id, user_id, tonumber(refresh_ttl_s),
  tonumber(session_max_s))
return user_reply(user_key, ttl)
