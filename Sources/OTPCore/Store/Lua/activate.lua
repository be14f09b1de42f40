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
-- the reply's fields: the id is the argument's, last_login_at is now
local u = redis.call('HMGET', user_key, 'email', 'phone', 'first_name', 'last_name', 'created_at', 'status')
local status = u[6]
if not status then return {'not_found'} end
-- every change to the user hash in one write
local now = now_ms()
local last_login_at = math.floor(now / 1000)
local writes = {'HSET', user_key, 'last_login_at', last_login_at}
accepted(writes)
if status == 'unverified' then
  status = 'active'
  writes[#writes + 1] = 'status'
  writes[#writes + 1] = 'active'
  redis.call('PERSIST', user_key)
end
-- a new password ends every earlier session, as a reset does (sr)
if password_hash ~= '' then
  writes[#writes + 1] = 'pw'
  writes[#writes + 1] = password_hash
  writes[#writes + 1] = 'sr'
  writes[#writes + 1] = now
end
redis.call(unpack(writes))
local ttl = start_session(nil, token_key, family_key, family_id, user_id, refresh_ttl_s, session_max_s)
-- {'ok', ttl, USER_FIELDS…}
return {'ok', ttl, user_id, u[1], u[2], u[3], u[4], u[5], last_login_at, status}
