-- Opens a password sign-in: refuses an identifier whose password sign-in is locked or over
-- its hourly wrong passwords, else takes one hourly failure ahead of the (slow)
-- verification — given back by `passwordFinish` when the password is right — so
-- concurrent guesses never exceed the budget, and returns the stored hash.
--
-- Password failures live in a record of their own (failures_key, the quota record's fields:
-- fc/fp this and last hour, cf in a row, lk locked until), never in the identifier's code
-- quotas: someone guessing a user's password cannot stop that user's code sign-in.
-- Returns {'ok', password hash or ''}, {'identifier_locked', s} or {'locked', s}
local now = now_ms()
local q = load_quota(failures_key)
local lockout = lock_wait(q, now)
if lockout > 0 then return {'identifier_locked', seconds(lockout)} end
local fc, fp, e = window(q, now, 'fc', 'fp')
local wait = wait_ms(fc, fp, tonumber(failures_per_hour), e)
if wait > 0 then return {'locked', seconds(wait)} end
local sc, sp = window(q, now, 'sc', 'sp')
save_quota(failures_key, failures_key, now, {sc = sc, sp = sp, fc = fc + 1, fp = fp, n = q.n, cf = q.cf, lk = q.lk})
return {'ok', redis.call('HGET', user_key, 'pw') or ''}
