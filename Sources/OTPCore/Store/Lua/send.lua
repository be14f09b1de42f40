-- Creates (or replaces) the OTP of one identifier, after its quotas. `register` creates an
-- unverified user and refuses an active one; `upsert` creates a user when there is none and
-- sends to any existing one; `login` needs a user; `login_conceal` answers a decoy without one.
-- Returns {'created', otp id, user created 1/0, telegram chat id or ''}, {'decoy', otp id},
--         {'replay', otp id, user created}, {'exists'}, {'no_user'}, {'tg_unlinked'},
--         {'locked', s} (too many wrong codes in a row), {'cooldown', s} or {'rate', s}
if idempotent == '1' then
  local prev = redis.call('GET', idempotency_key)
  if prev then
    local sep = string.find(prev, ':', 1, true)
    return {'replay', string.sub(prev, sep + 1), tonumber(string.sub(prev, 1, sep - 1))}
  end
end
-- the user's status and chat, and the identifier's quotas, in one read
local qkey, q, u = identifier_quota(user_key, own_quota_key, 'status', 'tg')
local status = u and u[10]
if mode == 'register' and status == 'active' then return {'exists'} end
local decoy = false
if mode ~= 'register' and mode ~= 'upsert' and not status then
  if mode == 'login' then return {'no_user'} end
  decoy = true
end
-- a chat is linked to a user or to nobody: an unknown user answers as an unlinked one
local chat = ''
if channel == 'telegram' then
  chat = u and u[11]
  if not chat then
    -- no linked chat: a phone number may still go through the Telegram Gateway
    if telegram_gateway_allowed ~= '1' then return {'tg_unlinked'} end
    chat = ''
  end
end
local now = now_ms()
local locked = lock_wait(q, now)
if locked > 0 then return {'locked', seconds(locked)} end
local sc, sp, e = window(q, now, 'sc', 'sp')
local rate = wait_ms(sc, sp, tonumber(sends_per_hour), e)
local cooldown = math.max(0, q.n - now)
if rate > cooldown then return {'rate', seconds(rate)} end
if cooldown > 0 then return {'cooldown', seconds(cooldown)} end
local fc, fp = window(q, now, 'fc', 'fp')
local ttl = tonumber(ttl_ms)
local created = 0
if not status and not decoy then
  redis.call('HSET', user_key, 'id', user_id, identifier_field, identifier, 'first_name', first_name,
    'last_name', last_name, 'status', 'unverified', 'created_at', math.floor(now / 1000))
  redis.call('PEXPIRE', user_key, unverified_ttl_ms)
  redis.call('DEL', own_quota_key)
  qkey = user_key
  created = 1
elseif status == 'unverified' then
  -- an unverified user lives at least as long as its newest code
  local left = redis.call('PTTL', user_key)
  if left >= 0 and left < ttl then redis.call('PEXPIRE', user_key, ttl_ms) end
end
save_quota(qkey, own_quota_key, now, {sc = sc + 1, sp = sp, fc = fc, fp = fp, n = now + tonumber(cooldown_ms), cf = q.cf, lk = q.lk})
redis.call('DEL', otp_key)
-- numbers as the strings they came in: a number Lua formats costs more than the write
redis.call('HSET', otp_key, 'i', otp_suffix, 'h', code_hash, 'a', '0')
redis.call('PEXPIRE', otp_key, ttl_ms)
local id = user_id .. '.' .. otp_suffix
if idempotent == '1' then redis.call('SET', idempotency_key, created .. ':' .. id, 'EX', 86400) end
if decoy then return {'decoy', id} end
return {'created', id, created, chat}
