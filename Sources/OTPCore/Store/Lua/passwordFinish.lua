-- Closes a password sign-in. Right (the verified hash is still the stored one): the
-- failure `passwordBegin` took is given back, the count of failures in a row starts over
-- and a session starts. Wrong: one failure in a row more; the one that reaches the
-- maximum locks the identifier's password sign-in (its codes still work). Cancelled
-- (nothing was verified): the failure is given back. verdict: right | wrong | cancel.
-- Returns {'ok', refresh ttl s, user fields…}, {'wrong', locked now 1/0},
--         {'identifier_locked', s} or {'cancelled'}
local now = now_ms()
local q = load_quota(failures_key)
local sc, sp = window(q, now, 'sc', 'sp')
local fc, fp = window(q, now, 'fc', 'fp')
if verdict == 'cancel' then
  save_quota(failures_key, failures_key, now, {sc = sc, sp = sp, fc = math.max(0, fc - 1), fp = fp, n = q.n, cf = q.cf, lk = q.lk})
  return {'cancelled'}
end
local right = verdict == 'right' and verified_hash ~= '' and redis.call('HGET', user_key, 'pw') == verified_hash
if not right then
  local cf, lk, locks = q.cf + 1, q.lk, 0
  if cf >= tonumber(max_in_a_row) then lk, cf, locks = now + tonumber(lockout_ms), 0, 1 end
  save_quota(failures_key, failures_key, now, {sc = sc, sp = sp, fc = fc, fp = fp, n = q.n, cf = cf, lk = lk})
  return {'wrong', locks}
end
local lockout = lock_wait(q, now)
save_quota(failures_key, failures_key, now, {sc = sc, sp = sp, fc = math.max(0, fc - 1), fp = fp, n = q.n,
  cf = lockout > 0 and q.cf or 0, lk = q.lk})
-- locked by other guesses while this password was being checked
if lockout > 0 then return {'identifier_locked', seconds(lockout)} end
local ttl = start_session(user_key, token_key, family_key, family_id, user_id, refresh_ttl_s, session_max_s)
return user_reply(user_key, ttl)
