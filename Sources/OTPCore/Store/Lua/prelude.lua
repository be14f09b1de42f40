-- Shared helpers, after the preamble (the script's named KEYS and ARGV, and USER_FIELDS)
-- and before every script that uses them.
--
-- Hourly quotas use a sliding-window counter: the count of the current clock hour plus the
-- previous hour's count weighted by how much of it still overlaps the last 60 minutes.
-- One more event fits while p·(H−e) + (c+1)·H ≤ limit·H (c, p: this and last hour's
-- counts, e: ms into this hour, H: an hour in ms) — integers, so the check and the wait
-- until it holds are exact.
local H = 3600000
-- the clock (ARGV[1]): empty in production, where time comes from Redis
local function now_ms()
  if clock ~= '' then return tonumber(clock) end
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- this hour's and the last hour's counts of fields cf/pf, and ms into this hour
local function window(q, now, cf, pf)
  local hour = math.floor(now / H)
  local w = tonumber(q.w or '-1')
  local c, p = tonumber(q[cf] or '0'), tonumber(q[pf] or '0')
  if w == hour - 1 then p, c = c, 0 elseif w ~= hour then p, c = 0, 0 end
  return c, p, now - hour * H
end
-- ms until one more event fits under the limit, if nothing else happens (0: it fits now)
local function wait_ms(c, p, limit, e)
  if p * (H - e) + (c + 1) * H <= limit * H then return 0 end
  if c + 1 <= limit and p > 0 then
    local fits = H - math.floor((limit - 1 - c) * H / p)
    if fits < H then return fits - e end
  end
  -- next hour the counts shift: p = c, c = 0
  local fits = 0
  if c > 0 then fits = math.max(0, H - math.floor((limit - 1) * H / c)) end
  return (H - e) + fits
end
local function seconds(ms) return math.max(1, math.ceil(ms / 1000)) end
-- Where an identifier's quotas live: in its user hash when there is a user (no key of
-- their own: less memory per pending login), else in a key that expires 2 h after its
-- last change.
local function quota_key(user_key, own_key)
  if redis.call('EXISTS', user_key) == 1 then return user_key end
  return own_key
end
-- w: hour; sc/sp: sends, fc/fp: failed verifications (this hour, the hour before); n: next
-- send allowed (ms); cf: wrong codes in a row; lk: locked until (ms)
local function load_quota(key)
  local v = redis.call('HMGET', key, 'w', 'sc', 'sp', 'fc', 'fp', 'n', 'cf', 'lk')
  return {w = v[1], sc = v[2], sp = v[3], fc = v[4], fp = v[5], n = tonumber(v[6] or '0'),
    cf = tonumber(v[7] or '0'), lk = tonumber(v[8] or '0')}
end
local function save_quota(key, own_key, now, q)
  redis.call('HSET', key, 'w', math.floor(now / H), 'sc', q.sc, 'sp', q.sp, 'fc', q.fc, 'fp', q.fp, 'n', q.n,
    'cf', q.cf, 'lk', q.lk)
  if key == own_key then redis.call('PEXPIRE', key, math.max(2 * H, q.lk - now)) end
end
-- ms until a lockout (after too many wrong codes in a row) ends; 0 when not locked
local function lock_wait(q, now) return math.max(0, q.lk - now) end
-- constant-time comparison of two byte strings of equal length
local function same(a, b)
  if not a or not b or #a ~= #b then return false end
  local d = 0
  for i = 1, #a do d = bit.bor(d, bit.bxor(string.byte(a, i), string.byte(b, i))) end
  return d == 0
end
-- {'ok', extra, user fields…}
local function user_reply(key, extra)
  local u = redis.call('HMGET', key, unpack(USER_FIELDS))
  table.insert(u, 1, extra)
  table.insert(u, 1, 'ok')
  return u
end
-- Judges a code presented for the OTP at otp_key (fields i: id, h: code hash, a: wrong
-- attempts), under the identifier's quotas. Returns the refusal to answer, or nil and a
-- function to call once the caller has accepted the code (the count of wrong codes in a
-- row starts over). A right code consumes the OTP; a wrong one uses one attempt, one
-- hourly failure and one failure in a row, and the one that reaches the maximum in a
-- row locks the identifier. suffix '' accepts any OTP id; c.keep checks without consuming.
-- c: {suffix, hash, failures_per_hour, max_attempts, sends_per_hour, max_in_a_row, lockout_ms}
local function judge_code(otp_key, user_key, own_key, c)
  local otp = redis.call('HMGET', otp_key, 'i', 'h', 'a')
  if not otp[1] or (c.suffix ~= '' and otp[1] ~= c.suffix) then return {'not_found'} end
  local now = now_ms()
  local qkey = quota_key(user_key, own_key)
  local q = load_quota(qkey)
  local attempts = tonumber(otp[3])
  if attempts >= c.max_attempts then
    local sc, sp, e = window(q, now, 'sc', 'sp')
    return {'exhausted', seconds(math.max(wait_ms(sc, sp, c.sends_per_hour, e), q.n - now))}
  end
  local lockout = lock_wait(q, now)
  if lockout > 0 then return {'identifier_locked', seconds(lockout)} end
  local fc, fp, e = window(q, now, 'fc', 'fp')
  local locked = wait_ms(fc, fp, c.failures_per_hour, e)
  if locked > 0 then return {'locked', seconds(locked)} end
  local sc, sp = window(q, now, 'sc', 'sp')
  if not same(otp[2], c.hash) then
    attempts = attempts + 1
    redis.call('HSET', otp_key, 'a', attempts)
    local cf, lk, locks = q.cf + 1, q.lk, 0
    if cf >= c.max_in_a_row then lk, cf, locks = now + c.lockout_ms, 0, 1 end
    save_quota(qkey, own_key, now, {sc = sc, sp = sp, fc = fc + 1, fp = fp, n = q.n, cf = cf, lk = lk})
    return {'invalid', c.max_attempts - attempts, locks}
  end
  if not c.keep then redis.call('DEL', otp_key) end
  return nil, function()
    if q.cf > 0 then save_quota(qkey, own_key, now, {sc = sc, sp = sp, fc = fc, fp = fp, n = q.n, cf = 0, lk = 0}) end
  end
end
-- Signs a user in: last_login_at, and a refresh token (s: a = active) in a new family
-- (a session: u user id, t0 sign-in ms). Returns the token's ttl in seconds.
local function start_session(user_key, token_key, family_key, family_id, user_id, refresh_ttl, session_max)
  local now = now_ms()
  redis.call('HSET', user_key, 'last_login_at', math.floor(now / 1000))
  local ttl = math.min(refresh_ttl, session_max)
  redis.call('HSET', token_key, 'f', family_id, 's', 'a')
  redis.call('EXPIRE', token_key, ttl)
  redis.call('HSET', family_key, 'u', user_id, 't0', now)
  redis.call('EXPIRE', family_key, ttl)
  return ttl
end
