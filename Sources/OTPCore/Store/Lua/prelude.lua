-- Shared helpers, after the preamble (the script's named KEYS and ARGV, and USER_FIELDS)
-- and before every script that uses them.
--
-- Hourly quotas use a sliding-window counter: the count of the current clock hour plus the
-- previous hour's count weighted by how much of it still overlaps the last 60 minutes.
-- One more event fits while p·(H−e) + (c+1)·H ≤ limit·H (c, p: this and last hour's
-- counts, e: ms into this hour, H: an hour in ms) — integers, so the check and the wait
-- until it holds are exact.
local H = 3600000
-- the clock (ARGV[1]): empty in production, where time comes from Redis. Read once: a
-- script runs atomically, at one instant.
local now_read
local function now_ms()
  if now_read then return now_read end
  if clock ~= '' then now_read = tonumber(clock) else
    local t = redis.call('TIME')
    now_read = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return now_read
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
-- w: hour; sc/sp: sends, fc/fp: failed verifications (this hour, the hour before); n: next
-- send allowed (ms); cf: wrong codes in a row; lk: locked until (ms)
local QUOTA_FIELDS = {'w', 'sc', 'sp', 'fc', 'fp', 'n', 'cf', 'lk'}
-- the values each quota key held when this script read it, for `save_quota` to write only
-- what changed (a number written is a number formatted: the costliest part of a small script)
local quota_read = {}
local function quota_of(key, v)
  quota_read[key] = v
  return {w = v[1], sc = v[2], sp = v[3], fc = v[4], fp = v[5], n = tonumber(v[6] or '0'),
    cf = tonumber(v[7] or '0'), lk = tonumber(v[8] or '0')}
end
local function load_quota(key)
  return quota_of(key, redis.call('HMGET', key, unpack(QUOTA_FIELDS)))
end
-- Writes the fields of q that differ from what `load_quota` read from key (all of them for a
-- key it did not read), the hour first.
local function save_quota(key, own_key, now, q)
  local was = quota_read[key]
  local args = {'HSET', key}
  local values = {math.floor(now / H), q.sc, q.sp, q.fc, q.fp, q.n, q.cf, q.lk}
  for i = 1, 8 do
    local old = was and tonumber(was[i] or (i == 1 and '-1' or '0'))
    if old ~= values[i] then
      args[#args + 1] = QUOTA_FIELDS[i]
      args[#args + 1] = values[i]
    end
  end
  if #args > 2 then redis.call(unpack(args)) end
  quota_read[key] = values
  if key == own_key then redis.call('PEXPIRE', key, math.max(2 * H, q.lk - now)) end
end
-- ms until a lockout (after too many wrong codes in a row) ends; 0 when not locked
local function lock_wait(q, now) return math.max(0, q.lk - now) end
-- Whether two secrets' hashes are equal, in time that tells nothing of where they differ.
-- Lua interns every string when it is made (an argument, a field read), so `==` compares two
-- pointers and reads no byte. (A byte loop cost 26,000 instructions a call, two SHA-1s 10,000.)
local function same(a, b)
  if not a or not b then return false end
  return a == b
end
-- Where an identifier's quotas live, and what they hold: in its user hash when there is a
-- user (no key of their own: less memory per pending login), else in a key that expires 2 h
-- after its last change. One read of the user hash (every user hash has an `id`), with the
-- user's fields named in `...`: returns the key, the quotas, and the user hash's reply, whose
-- fields from `...` start at index 10 (nil when there is no user). A key that is its own
-- quota key (a Twilio Verify `To`'s) is read once.
local function identifier_quota(user_key, own_key, ...)
  if user_key == own_key then return own_key, load_quota(own_key), nil end
  local v = redis.call('HMGET', user_key, 'w', 'sc', 'sp', 'fc', 'fp', 'n', 'cf', 'lk', 'id', ...)
  if not v[9] then return own_key, load_quota(own_key), nil end
  return user_key, quota_of(user_key, v), v
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
-- row starts over: given a table, it appends the fields to reset to it, for the caller's
-- own HSET of the user hash, else it writes them). A right code consumes the OTP; a wrong
-- one uses one attempt, one hourly failure and one failure in a row, and the one that
-- reaches the maximum in a row locks the identifier. suffix '' accepts any OTP id; c.keep
-- checks without consuming.
-- c: {suffix, hash, failures_per_hour, max_attempts, sends_per_hour, max_in_a_row, lockout_ms}
local function judge_code(otp_key, user_key, own_key, c)
  local otp = redis.call('HMGET', otp_key, 'i', 'h', 'a')
  if not otp[1] or (c.suffix ~= '' and otp[1] ~= c.suffix) then return {'not_found'} end
  local now = now_ms()
  local qkey, q = identifier_quota(user_key, own_key)
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
  return nil, function(pairs)
    if q.cf == 0 then return end
    if pairs and qkey == user_key then
      pairs[#pairs + 1] = 'cf'
      pairs[#pairs + 1] = 0
      pairs[#pairs + 1] = 'lk'
      pairs[#pairs + 1] = 0
    else
      save_quota(qkey, own_key, now, {sc = sc, sp = sp, fc = fc, fp = fp, n = q.n, cf = 0, lk = 0})
    end
  end
end
-- Signs a user in: last_login_at (unless user_key is nil: the caller writes it), and a
-- refresh token (s: a = active) in a new family (a session: u user id, t0 sign-in ms).
-- Returns the token's ttl in seconds.
local function start_session(user_key, token_key, family_key, family_id, user_id, refresh_ttl, session_max)
  local now = now_ms()
  if user_key then redis.call('HSET', user_key, 'last_login_at', math.floor(now / 1000)) end
  -- the shorter of the two, as given (a number Lua made would be formatted again)
  local ttl = tonumber(refresh_ttl) <= tonumber(session_max) and refresh_ttl or session_max
  redis.call('HSET', token_key, 'f', family_id, 's', 'a')
  redis.call('EXPIRE', token_key, ttl)
  redis.call('HSET', family_key, 'u', user_id, 't0', now)
  redis.call('EXPIRE', family_key, ttl)
  return ttl
end
