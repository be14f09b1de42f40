public import RedisClient

/// The Lua scripts: every state change that must be atomic across replicas is one of these.
///
/// Only `OTPStore` calls them, each from exactly one typed function; nothing else sees an
/// ARGV index or a reply string. Every key a script touches shares the hash tag `{app:user}`
/// of its KEYS (keys it derives, such as a refresh-token family, are built from a prefix with
/// the same tag), so each script runs on one Redis Cluster slot.
///
/// `ARGV[1]` of every script is the clock: empty in production, where time comes from Redis
/// (`TIME`, one clock for all replicas); tests of the store pass milliseconds to move through
/// hours. docs/redis-keys.md describes the keys and fields.
public enum Scripts {
    /// The user hash's fields, in the order every script returns them and `User` reads them.
    static let userFields = ["id", "email", "phone", "first_name", "last_name", "created_at", "last_login_at", "status"]

    /// Shared helpers, prepended to every script.
    ///
    /// Hourly quotas use a sliding-window counter: the count of the current clock hour plus the
    /// previous hour's count weighted by how much of it still overlaps the last 60 minutes.
    /// One more event fits while `p·(H−e) + (c+1)·H ≤ limit·H` (c, p: this and last hour's
    /// counts, e: ms into this hour, H: an hour in ms) — integers, so the check and the wait
    /// until it holds are exact.
    static let prelude = """
        local H = 3600000
        local function now_ms()
          if ARGV[1] ~= '' then return tonumber(ARGV[1]) end
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
        -- Compares a code with an identifier's OTP (c: otp, quota and user keys, id: the otp id
        -- after the user id, hash, max attempts, failures and sends per hour, max failures in a
        -- row, lockout ms), after its guards: attempts left, lockout, hourly failures. A wrong
        -- code uses one attempt, one hourly failure and one failure in a row; the one that
        -- reaches the maximum in a row locks the identifier. Returns a refusal, or nil and the
        -- identifier's quota state when the code is right (nothing changed yet).
        local USER_FIELDS = {'\(userFields.joined(separator: "', '"))'}
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

        """

    /// Creates (or replaces) the OTP of one identifier, after its quotas. `register` creates an
    /// unverified user and refuses an active one; `upsert` creates a user when there is none and
    /// sends to any existing one; `login` needs a user; `login_conceal` answers a decoy without one.
    ///
    /// KEYS: 1 user, 2 otp, 3 own quota, 4 idempotency record (any key of the tag when unused)
    /// ARGV: 1 clock, 2 mode (register | upsert | login | login_conceal), 3 otp id (the part after the
    ///       user id), 4 code hash, 5 channel, 6 ttl ms, 7 cooldown ms, 8 sends per hour,
    ///       9 idempotent (1/0), 10 user id, 11 identifier field (email/phone), 12 identifier,
    ///       13 first name, 14 last name, 15 unverified user ttl ms, 16 telegram without a linked
    ///       chat allowed (1/0: a phone number and the Telegram Gateway)
    /// Returns {'created', otp id, user created 1/0, telegram chat id or ''}, {'decoy', otp id},
    ///         {'replay', otp id, user created}, {'exists'}, {'no_user'}, {'tg_unlinked'},
    ///         {'locked', s} (too many wrong codes in a row), {'cooldown', s} or {'rate', s}
    public static let send = RedisScript(
        prelude + """
            if ARGV[9] == '1' then
              local prev = redis.call('GET', KEYS[4])
              if prev then
                local sep = string.find(prev, ':', 1, true)
                return {'replay', string.sub(prev, sep + 1), tonumber(string.sub(prev, 1, sep - 1))}
              end
            end
            local mode = ARGV[2]
            local status = redis.call('HGET', KEYS[1], 'status')
            if mode == 'register' and status == 'active' then return {'exists'} end
            local decoy = false
            if mode ~= 'register' and mode ~= 'upsert' and not status then
              if mode == 'login' then return {'no_user'} end
              decoy = true
            end
            -- a chat is linked to a user or to nobody: an unknown user answers as an unlinked one
            local chat = ''
            if ARGV[5] == 'telegram' then
              chat = redis.call('HGET', KEYS[1], 'tg')
              if not chat then
                -- no linked chat: a phone number may still go through the Telegram Gateway
                if ARGV[16] ~= '1' then return {'tg_unlinked'} end
                chat = ''
              end
            end
            local now = now_ms()
            local qkey = quota_key(KEYS[1], KEYS[3])
            local q = load_quota(qkey)
            local locked = lock_wait(q, now)
            if locked > 0 then return {'locked', seconds(locked)} end
            local sc, sp, e = window(q, now, 'sc', 'sp')
            local rate = wait_ms(sc, sp, tonumber(ARGV[8]), e)
            local cooldown = math.max(0, q.n - now)
            if rate > cooldown then return {'rate', seconds(rate)} end
            if cooldown > 0 then return {'cooldown', seconds(cooldown)} end
            local fc, fp = window(q, now, 'fc', 'fp')
            local ttl = tonumber(ARGV[6])
            local created = 0
            if not status and not decoy then
              redis.call('HSET', KEYS[1], 'id', ARGV[10], ARGV[11], ARGV[12], 'first_name', ARGV[13],
                'last_name', ARGV[14], 'status', 'unverified', 'created_at', math.floor(now / 1000))
              redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[15]))
              redis.call('DEL', KEYS[3])
              qkey = KEYS[1]
              created = 1
            elseif status == 'unverified' then
              -- an unverified user lives at least as long as its newest code
              local left = redis.call('PTTL', KEYS[1])
              if left >= 0 and left < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
            end
            save_quota(qkey, KEYS[3], now, {sc = sc + 1, sp = sp, fc = fc, fp = fp, n = now + tonumber(ARGV[7]), cf = q.cf, lk = q.lk})
            redis.call('DEL', KEYS[2])
            redis.call('HSET', KEYS[2], 'i', ARGV[3], 'h', ARGV[4], 'a', 0)
            redis.call('PEXPIRE', KEYS[2], ttl)
            local id = ARGV[10] .. '.' .. ARGV[3]
            if ARGV[9] == '1' then redis.call('SET', KEYS[4], created .. ':' .. id, 'EX', 86400) end
            if decoy then return {'decoy', id} end
            return {'created', id, created, chat}
            """)

    /// Undoes a send whose delivery failed: the OTP is deleted (if it is still that one), the
    /// idempotency record is dropped, and a user the send created is deleted. The send and the
    /// cooldown are given back, unless the quota is kept (the gateway was reached: the send
    /// counts); a kept quota of a user being deleted moves to the identifier's own quota key,
    /// so deleting the user does not forget it.
    ///
    /// KEYS: 1 otp, 2 own quota, 3 idempotency record, 4 user
    /// ARGV: 1 clock, 2 otp id (after the user id), 3 user created (1/0), 4 keep the quota (1/0)
    public static let cancelSend = RedisScript(
        prelude + """
            if redis.call('HGET', KEYS[1], 'i') == ARGV[2] then redis.call('DEL', KEYS[1]) end
            local now = now_ms()
            local keep = ARGV[4] == '1'
            local delete_user = ARGV[3] == '1' and redis.call('HGET', KEYS[4], 'status') == 'unverified'
            local qkey = quota_key(KEYS[4], KEYS[2])
            local q = load_quota(qkey)
            if q.w and (not keep or (delete_user and qkey ~= KEYS[2])) then
              local sc, sp = window(q, now, 'sc', 'sp')
              local fc, fp = window(q, now, 'fc', 'fp')
              local n = q.n
              if not keep then sc, n = math.max(0, sc - 1), 0 end
              local target = qkey
              if delete_user then target = KEYS[2] end
              save_quota(target, KEYS[2], now, {sc = sc, sp = sp, fc = fc, fp = fp, n = n, cf = q.cf, lk = q.lk})
            end
            local idem = redis.call('GET', KEYS[3])
            if idem and string.sub(idem, -#ARGV[2]) == ARGV[2] then redis.call('DEL', KEYS[3]) end
            if delete_user then redis.call('DEL', KEYS[4]) end
            return 1
            """)

    /// Checks a code. Right: the OTP is consumed, the user activated and signed in, the count of
    /// wrong codes in a row reset, and a refresh token and its family (a session) stored. Wrong:
    /// one attempt, one hourly failure and one consecutive failure used; the one that reaches
    /// the maximum in a row locks the identifier. With a proof (the hub's `set_password`), the
    /// OTP must hold that proof (`otp.verify` stored it) or it answers not found, and the right
    /// code also stores the given password hash in the user's `pw`.
    ///
    /// KEYS: 1 otp, 2 own quota, 3 user, 4 new refresh token, 5 new family
    /// ARGV: 1 clock, 2 otp id (after the user id), 3 code hash, 4 failures per hour,
    ///       5 refresh ttl s, 6 family id, 7 user id, 8 max attempts, 9 sends per hour,
    ///       10 max consecutive failures, 11 lockout ms, 12 session max s,
    ///       13 proof hash or '', 14 password hash or ''
    /// Returns {'ok', refresh ttl s, user fields…}, {'not_found'},
    ///         {'invalid', attempts remaining, locked now 1/0}, {'exhausted', s until a new code
    ///         may be sent}, {'identifier_locked', s} or {'locked', s}
    public static let activate = RedisScript(
        prelude + """
            if ARGV[13] ~= '' and not same(redis.call('HGET', KEYS[1], 'v'), ARGV[13]) then return {'not_found'} end
            local refusal, accepted = judge_code(KEYS[1], KEYS[3], KEYS[2], {
              suffix = ARGV[2], hash = ARGV[3], failures_per_hour = tonumber(ARGV[4]), max_attempts = tonumber(ARGV[8]),
              sends_per_hour = tonumber(ARGV[9]), max_in_a_row = tonumber(ARGV[10]), lockout_ms = tonumber(ARGV[11])})
            if refusal then return refusal end
            local status = redis.call('HGET', KEYS[3], 'status')
            if not status then return {'not_found'} end
            accepted()
            if status == 'unverified' then
              redis.call('HSET', KEYS[3], 'status', 'active')
              redis.call('PERSIST', KEYS[3])
            end
            -- a new password ends every earlier session, as a reset does (sr)
            if ARGV[14] ~= '' then redis.call('HSET', KEYS[3], 'pw', ARGV[14], 'sr', now_ms()) end
            local ttl = start_session(KEYS[3], KEYS[4], KEYS[5], ARGV[6], ARGV[7], tonumber(ARGV[5]), tonumber(ARGV[12]))
            return user_reply(KEYS[3], ttl)
            """)

    /// Checks a code without consuming it (the hub's `otp.verify`): the same guards and the same
    /// accounting of a wrong code as `activate`; a right code stores a proof (the hash of a new
    /// secret) in the OTP, replacing any earlier one, for `activate` to require. The proof lives
    /// as long as the OTP.
    ///
    /// KEYS: 1 otp, 2 own quota, 3 user
    /// ARGV: 1 clock, 2 otp id (after the user id), 3 code hash, 4 failures per hour,
    ///       5 max attempts, 6 sends per hour, 7 max consecutive failures, 8 lockout ms,
    ///       9 proof hash to store or '', 10 conceal an unknown user (1/0: judge its decoy OTP),
    ///       11 proof hash the OTP must hold or ''
    /// Returns {'ok', expires at (Unix ms)}, {'no_user'}, {'not_found'},
    ///         {'invalid', attempts remaining, locked now 1/0}, {'exhausted', s},
    ///         {'identifier_locked', s} or {'locked', s}
    public static let check = RedisScript(
        prelude + """
            local exists = redis.call('EXISTS', KEYS[3]) == 1
            if not exists and ARGV[10] ~= '1' then return {'no_user'} end
            if ARGV[11] ~= '' and not same(redis.call('HGET', KEYS[1], 'v'), ARGV[11]) then return {'not_found'} end
            local refusal, accepted = judge_code(KEYS[1], KEYS[3], KEYS[2], {
              suffix = ARGV[2], hash = ARGV[3], failures_per_hour = tonumber(ARGV[4]), max_attempts = tonumber(ARGV[5]),
              sends_per_hour = tonumber(ARGV[6]), max_in_a_row = tonumber(ARGV[7]), lockout_ms = tonumber(ARGV[8]),
              keep = true})
            if refusal then return refusal end
            if not exists then return {'not_found'} end
            accepted()
            if ARGV[9] ~= '' then redis.call('HSET', KEYS[1], 'v', ARGV[9]) end
            local left = redis.call('PTTL', KEYS[1])
            return {'ok', now_ms() + math.max(0, left)}
            """)

    /// Rotates a refresh token within its session (family). The presented token is marked
    /// rotated and its child stored; the child is derived from the parent by the caller, so a
    /// retry of the same refresh names the same child. Presenting a rotated token again within
    /// the reuse interval while its child is unused answers that child again (a retried or
    /// concurrent refresh); any other reuse revokes the family. A session ends
    /// `session max` after its sign-in however often it rotates, and answers at most
    /// `refreshes per hour` times an hour (retries included: each mints an access token).
    ///
    /// KEYS: 1 presented token, 2 child token, 3 user
    /// ARGV: 1 clock, 2 family key prefix, 3 refresh ttl s, 4 session max s, 5 reuse interval ms,
    ///       6 refreshes per hour
    /// Returns {'ok', child ttl s, user fields…}, {'invalid'}, {'reused'} or {'rate', s}
    public static let refresh = RedisScript(
        prelude + """
            local token = redis.call('HMGET', KEYS[1], 'f', 's', 't')
            if not token[1] then return {'invalid'} end
            local family = ARGV[2] .. token[1]
            local session = redis.call('HMGET', family, 'u', 't0', 'w', 'sc', 'sp')
            if not session[1] then return {'invalid'} end
            local now = now_ms()
            local ends = tonumber(session[2]) + tonumber(ARGV[4]) * 1000
            -- sr: a password reset ended every session that started before it (ms)
            local revoked = redis.call('HMGET', KEYS[3], 'id', 'sr')
            if now >= ends or not revoked[1] or tonumber(session[2]) < tonumber(revoked[2] or '0') then
              redis.call('DEL', family)
              return {'invalid'}
            end
            -- every answer that mints an access token, a retry's too, counts against the hour
            local sc, sp, e = window({w = session[3], sc = session[4], sp = session[5]}, now, 'sc', 'sp')
            local function count() redis.call('HSET', family, 'w', math.floor(now / H), 'sc', sc + 1, 'sp', sp) end
            if token[2] ~= 'a' then
              local child = redis.call('HMGET', KEYS[2], 'f', 's')
              if now - tonumber(token[3] or '0') < tonumber(ARGV[5]) and child[1] == token[1] and child[2] == 'a' then
                local wait = wait_ms(sc, sp, tonumber(ARGV[6]), e)
                if wait > 0 then return {'rate', seconds(wait)} end
                count()
                return user_reply(KEYS[3], math.max(1, math.floor(redis.call('PTTL', KEYS[2]) / 1000)))
              end
              redis.call('DEL', family)
              return {'reused'}
            end
            local wait = wait_ms(sc, sp, tonumber(ARGV[6]), e)
            if wait > 0 then return {'rate', seconds(wait)} end
            local ttl = math.min(tonumber(ARGV[3]), math.floor((ends - now) / 1000))
            if ttl < 1 then
              redis.call('DEL', family)
              return {'invalid'}
            end
            redis.call('HSET', KEYS[1], 's', 'r', 't', now)
            redis.call('HSET', KEYS[2], 'f', token[1], 's', 'a')
            redis.call('EXPIRE', KEYS[2], ttl)
            count()
            redis.call('EXPIRE', family, ttl)
            return user_reply(KEYS[3], ttl)
            """)

    /// Checks a password-reset code and, when it is right, stores the new password's hash in
    /// the same step: the code is consumed, an unverified user becomes active (the code proved
    /// the address), and every session that started before now ends (`sr`). Wrong codes count
    /// as in `activate` (attempts, hourly failures, failures in a row and the lockout).
    ///
    /// Without a password hash the code is only judged: a wrong one counts as above, a right
    /// one is kept and answers ok (the caller then hashes the password, which it does only for
    /// a code Redis accepted, and calls again with the hash).
    ///
    /// KEYS: 1 reset otp, 2 own quota, 3 user
    /// ARGV: 1 clock, 2 code hash, 3 failures per hour, 4 max attempts, 5 sends per hour,
    ///       6 max consecutive failures, 7 lockout ms, 8 password hash ('' to judge only)
    /// Returns {'ok'}, {'not_found'}, {'invalid', attempts remaining, locked now 1/0},
    ///         {'exhausted', s}, {'identifier_locked', s} or {'locked', s}
    public static let resetPassword = RedisScript(
        prelude + """
            local judge_only = ARGV[8] == ''
            local refusal, accepted = judge_code(KEYS[1], KEYS[3], KEYS[2], {
              suffix = '', hash = ARGV[2], failures_per_hour = tonumber(ARGV[3]), max_attempts = tonumber(ARGV[4]),
              sends_per_hour = tonumber(ARGV[5]), max_in_a_row = tonumber(ARGV[6]), lockout_ms = tonumber(ARGV[7]),
              keep = judge_only})
            if refusal then return refusal end
            local status = redis.call('HGET', KEYS[3], 'status')
            if not status then return {'not_found'} end
            accepted()
            if judge_only then return {'ok'} end
            redis.call('HSET', KEYS[3], 'pw', ARGV[8], 'sr', now_ms())
            if status == 'unverified' then
              redis.call('HSET', KEYS[3], 'status', 'active')
              redis.call('PERSIST', KEYS[3])
            end
            return {'ok'}
            """)

    /// Opens a password sign-in: refuses an identifier whose password sign-in is locked or over
    /// its hourly wrong passwords, else takes one hourly failure ahead of the (slow)
    /// verification — given back by `passwordFinish` when the password is right — so
    /// concurrent guesses never exceed the budget, and returns the stored hash.
    ///
    /// Password failures live in a record of their own (KEYS[2], the quota record's fields:
    /// fc/fp this and last hour, cf in a row, lk locked until), never in the identifier's code
    /// quotas: someone guessing a user's password cannot stop that user's code sign-in.
    ///
    /// KEYS: 1 user, 2 password failures; ARGV: 1 clock, 2 wrong passwords per hour
    /// Returns {'ok', password hash or ''}, {'identifier_locked', s} or {'locked', s}
    public static let passwordBegin = RedisScript(
        prelude + """
            local now = now_ms()
            local qkey = KEYS[2]
            local q = load_quota(qkey)
            local lockout = lock_wait(q, now)
            if lockout > 0 then return {'identifier_locked', seconds(lockout)} end
            local fc, fp, e = window(q, now, 'fc', 'fp')
            local wait = wait_ms(fc, fp, tonumber(ARGV[2]), e)
            if wait > 0 then return {'locked', seconds(wait)} end
            local sc, sp = window(q, now, 'sc', 'sp')
            save_quota(qkey, KEYS[2], now, {sc = sc, sp = sp, fc = fc + 1, fp = fp, n = q.n, cf = q.cf, lk = q.lk})
            return {'ok', redis.call('HGET', KEYS[1], 'pw') or ''}
            """)

    /// Closes a password sign-in. Right (the verified hash is still the stored one): the
    /// failure `passwordBegin` took is given back, the count of failures in a row starts over
    /// and a session starts. Wrong: one failure in a row more; the one that reaches the
    /// maximum locks the identifier's password sign-in (its codes still work). Cancelled
    /// (nothing was verified): the failure is given back.
    ///
    /// KEYS: 1 user, 2 password failures (see `passwordBegin`), 3 new refresh token, 4 new family
    /// ARGV: 1 clock, 2 verdict (right | wrong | cancel), 3 verified hash, 4 max consecutive
    ///       failures, 5 lockout ms, 6 refresh ttl s, 7 family id, 8 user id, 9 session max s
    /// Returns {'ok', refresh ttl s, user fields…}, {'wrong', locked now 1/0},
    ///         {'identifier_locked', s} or {'cancelled'}
    public static let passwordFinish = RedisScript(
        prelude + """
            local now = now_ms()
            local qkey = KEYS[2]
            local q = load_quota(qkey)
            local sc, sp = window(q, now, 'sc', 'sp')
            local fc, fp = window(q, now, 'fc', 'fp')
            if ARGV[2] == 'cancel' then
              save_quota(qkey, KEYS[2], now, {sc = sc, sp = sp, fc = math.max(0, fc - 1), fp = fp, n = q.n, cf = q.cf, lk = q.lk})
              return {'cancelled'}
            end
            local right = ARGV[2] == 'right' and ARGV[3] ~= '' and redis.call('HGET', KEYS[1], 'pw') == ARGV[3]
            if not right then
              local cf, lk, locks = q.cf + 1, q.lk, 0
              if cf >= tonumber(ARGV[4]) then lk, cf, locks = now + tonumber(ARGV[5]), 0, 1 end
              save_quota(qkey, KEYS[2], now, {sc = sc, sp = sp, fc = fc, fp = fp, n = q.n, cf = cf, lk = lk})
              return {'wrong', locks}
            end
            local lockout = lock_wait(q, now)
            save_quota(qkey, KEYS[2], now, {sc = sc, sp = sp, fc = math.max(0, fc - 1), fp = fp, n = q.n,
              cf = lockout > 0 and q.cf or 0, lk = q.lk})
            -- locked by other guesses while this password was being checked
            if lockout > 0 then return {'identifier_locked', seconds(lockout)} end
            local ttl = start_session(KEYS[1], KEYS[3], KEYS[4], ARGV[7], ARGV[8], tonumber(ARGV[6]), tonumber(ARGV[9]))
            return user_reply(KEYS[1], ttl)
            """)

    /// Replaces a password hash by a stronger one of the same password (after a sign-in with
    /// parameters below the current ones), unless the password changed meanwhile.
    /// KEYS: 1 user; ARGV: 1 clock (unused), 2 the hash verified, 3 the new hash.
    /// Returns 1 when replaced, else 0.
    public static let rehashPassword = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'pw') ~= ARGV[2] then return 0 end
        redis.call('HSET', KEYS[1], 'pw', ARGV[3])
        return 1
        """)

    /// Creates an imported user unless one exists (`otpd import users`): the fields a
    /// registration writes; an unverified user expires like a fresh registration's.
    ///
    /// KEYS: 1 user
    /// ARGV: 1 clock (unused), 2 user id, 3 identifier field, 4 identifier, 5 phone ('' for none,
    ///       or when the identifier is the phone), 6 first name, 7 last name, 8 status,
    ///       9 created_at s, 10 unverified user ttl ms
    /// Returns 1 when created, 0 when the user existed.
    ///
    /// A registration's pending user that never activated (`unverified`, not imported: no `im`)
    /// does not count as existing: it is replaced, and its pending codes (KEYS 2-4) deleted, so
    /// registering someone's address first neither blocks nor alters their import.
    public static let importUser = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 1 then
          local u = redis.call('HMGET', KEYS[1], 'status', 'im')
          if u[1] ~= 'unverified' or u[2] then return 0 end
          redis.call('DEL', unpack(KEYS))
        end
        redis.call('HSET', KEYS[1], 'id', ARGV[2], ARGV[3], ARGV[4], 'first_name', ARGV[6], 'last_name', ARGV[7],
          'status', ARGV[8], 'created_at', ARGV[9], 'im', '1')
        if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'phone', ARGV[5]) end
        if ARGV[8] == 'unverified' then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[10])) end
        return 1
        """)

    /// Binds a hub socket to a session (the hash of its cookie) for `ttl` ms, or renews the
    /// binding while the socket is open. A socket bound to another session stays as it is.
    ///
    /// KEYS: 1 socket; ARGV: 1 clock (unused), 2 session hash, 3 ttl ms
    /// Returns 1 when bound (or renewed), 0 when the socket is bound to another session.
    public static let bindSocket = RedisScript(
        prelude + """
            local bound = redis.call('GET', KEYS[1])
            if bound and not same(bound, ARGV[2]) then return 0 end
            redis.call('SET', KEYS[1], ARGV[2], 'PX', tonumber(ARGV[3]))
            return 1
            """)

    /// Whether a hub socket is open and bound to a session (constant-time comparison).
    /// KEYS: 1 socket; ARGV: 1 clock (unused), 2 session hash. Returns 1 or 0.
    public static let checkSocket = RedisScript(
        prelude + """
            return same(redis.call('GET', KEYS[1]), ARGV[2]) and 1 or 0
            """)

    /// Ends a hub socket's binding (the socket closed). KEYS: 1 socket; ARGV: 1 clock (unused),
    /// 2 session hash. Returns 1 when a binding of that session was deleted, else 0.
    public static let closeSocket = RedisScript(
        prelude + """
            if not same(redis.call('GET', KEYS[1]), ARGV[2]) then return 0 end
            redis.call('DEL', KEYS[1])
            return 1
            """)

    /// The open hub sockets of one client IP (an IPv6 /64), across replicas: a sorted set whose
    /// members are `<hard end ms>:<socket id>` scored by their lease's expiry (ms). A socket
    /// takes a lease when it opens and renews it with its binding; it is removed when the socket
    /// closes, and a lease not renewed (a replica that died) expires. At most `cap` leases live
    /// at once. A refusal says when a place frees at the latest: each socket is gone by its
    /// hard end (socket_max_seconds after it opened) or, if its replica died, its lease's end.
    ///
    /// KEYS: 1 the IP's set; ARGV: 1 clock, 2 member, 3 lease ms, 4 cap, 5 acquire | renew | release
    /// Returns {'ok'} or {'full', s until a place frees at the latest}
    public static let hubSocketLease = RedisScript(
        prelude + """
            local now = now_ms()
            if ARGV[5] == 'release' then
              redis.call('ZREM', KEYS[1], ARGV[2])
              return {'ok'}
            end
            redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
            local held = redis.call('ZSCORE', KEYS[1], ARGV[2])
            if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then
              local soonest
              local leases = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
              for i = 1, #leases, 2 do
                local sep = string.find(leases[i], ':', 1, true)
                local ends = math.max(tonumber(string.sub(leases[i], 1, sep - 1)), tonumber(leases[i + 1]))
                if not soonest or ends < soonest then soonest = ends end
              end
              return {'full', seconds(soonest - now)}
            end
            local expires = now + tonumber(ARGV[3])
            redis.call('ZADD', KEYS[1], expires, ARGV[2])
            local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
            redis.call('PEXPIREAT', KEYS[1], math.max(expires, tonumber(last[2] or expires)))
            return {'ok'}
            """)

    /// Revokes the family of a refresh token. KEYS: 1 token; ARGV: 1 clock, 2 family key prefix.
    /// Returns 1 when a family was revoked, else 0.
    public static let revoke = RedisScript(
        """
        local family = redis.call('HGET', KEYS[1], 'f')
        if family then redis.call('DEL', ARGV[2] .. family) end
        return family and 1 or 0
        """)

    /// One hourly counter with a key (and hash tag) of its own: a client IP's sends, a client
    /// IP's failed verifications, an app's SMS and calls. Taken before the action it guards and
    /// given back (`giveBack`) when the action did not happen, so concurrent requests never
    /// exceed the limit.
    ///
    /// KEYS: 1 counter; ARGV: 1 clock, 2 limit
    /// Returns {'ok'} or {'rate', s}
    public static let hourlyCounter = RedisScript(
        prelude + """
            local now = now_ms()
            local v = redis.call('HMGET', KEYS[1], 'w', 'c', 'p')
            local c, p, e = window({w = v[1], c = v[2], p = v[3]}, now, 'c', 'p')
            local wait = wait_ms(c, p, tonumber(ARGV[2]), e)
            if wait > 0 then return {'rate', seconds(wait)} end
            redis.call('HSET', KEYS[1], 'w', math.floor(now / H), 'c', c + 1, 'p', p)
            redis.call('PEXPIRE', KEYS[1], 2 * H)
            return {'ok'}
            """)

    /// Gives back one unit `hourlyCounter` took, when the action it guarded did not happen or
    /// did not count (a right code). Without the prelude: it only needs the hour. A unit taken
    /// in an earlier hour is not given back (it sits in the previous hour's count, which
    /// `hourlyCounter` weighs down as the hour passes); nor is a counter that is gone.
    ///
    /// KEYS: 1 counter; ARGV: 1 clock. Returns 1 when a unit was given back, else 0.
    public static let giveBack = RedisScript(
        """
        local now
        if ARGV[1] ~= '' then now = tonumber(ARGV[1]) else
          local t = redis.call('TIME')
          now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        local v = redis.call('HMGET', KEYS[1], 'w', 'c')
        if tonumber(v[1] or '-1') ~= math.floor(now / 3600000) or tonumber(v[2] or '0') < 1 then return 0 end
        redis.call('HINCRBY', KEYS[1], 'c', -1)
        return 1
        """)

    /// Lifts an identifier's lockout (`otpd user unlock`): the count of wrong codes in a row
    /// and the lock, wherever its quotas live. KEYS: 1 user, 2 own quota; ARGV: 1 clock.
    /// Returns 1 when it was locked, else 0.
    public static let unlock = RedisScript(
        prelude + """
            local now = now_ms()
            local was = 0
            for _, key in ipairs(KEYS) do
              local lk = tonumber(redis.call('HGET', key, 'lk') or '0')
              if lk > now then was = 1 end
              if redis.call('EXISTS', key) == 1 then redis.call('HSET', key, 'cf', 0, 'lk', 0) end
            end
            return was
            """)

    /// Stores a channel-API code (the caller's), replacing the destination's earlier one.
    /// KEYS: 1 code; ARGV: 1 clock, 2 id of this code, 3 code hash, 4 lifetime ms. Returns 1.
    public static let channelCreate = RedisScript(
        """
        redis.call('DEL', KEYS[1])
        redis.call('HSET', KEYS[1], 'i', ARGV[2], 'h', ARGV[3], 'a', 0)
        redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))
        return 1
        """)

    /// Deletes a channel-API code whose message could not be delivered, if it is still that one.
    /// KEYS: 1 code; ARGV: 1 clock, 2 id of the code. Returns 1.
    public static let channelCancel = RedisScript(
        """
        if redis.call('HGET', KEYS[1], 'i') == ARGV[2] then redis.call('DEL', KEYS[1]) end
        return 1
        """)

    /// Checks a channel-API code: right consumes it; wrong uses an attempt, and the one that
    /// reaches the maximum kills it.
    /// KEYS: 1 code; ARGV: 1 clock, 2 code hash, 3 max attempts.
    /// Returns {'ok'}, {'invalid', attempts remaining} or {'not_found'}
    public static let channelCheck = RedisScript(
        prelude + """
            local code = redis.call('HMGET', KEYS[1], 'h', 'a')
            if not code[1] then return {'not_found'} end
            local attempts, max = tonumber(code[2]), tonumber(ARGV[3])
            if attempts >= max then
              redis.call('DEL', KEYS[1])
              return {'not_found'}
            end
            if same(code[1], ARGV[2]) then
              redis.call('DEL', KEYS[1])
              return {'ok'}
            end
            attempts = attempts + 1
            if attempts >= max then redis.call('DEL', KEYS[1]) else redis.call('HSET', KEYS[1], 'a', attempts) end
            return {'invalid', max - attempts}
            """)

    /// Handles one bot update exactly once: unless the update was seen in the last day, stores
    /// the code handed out for it (its hash → the chat id) and marks the update seen, together.
    /// A chat gets at most ARGV[4] codes an hour (its counter KEYS[3], the sliding window of
    /// `hourlyCounter`): beyond it the update is marked seen and nothing is stored.
    /// KEYS: 1 update, 2 code, 3 the chat's hourly count; ARGV: 1 clock, 2 chat id, 3 lifetime s,
    /// 4 codes per chat per hour.
    /// Returns {'ok'}, {'duplicate'}, {'limited'}, or {'taken'} (a live code has that hash: draw another)
    public static let botCode = RedisScript(
        prelude + """
            if redis.call('EXISTS', KEYS[1]) == 1 then return {'duplicate'} end
            local now = now_ms()
            local v = redis.call('HMGET', KEYS[3], 'w', 'c', 'p')
            local c, p, e = window({w = v[1], c = v[2], p = v[3]}, now, 'c', 'p')
            if wait_ms(c, p, tonumber(ARGV[4]), e) > 0 then
              redis.call('SET', KEYS[1], '1', 'EX', 86400)
              return {'limited'}
            end
            if redis.call('EXISTS', KEYS[2]) == 1 then return {'taken'} end
            redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
            redis.call('SET', KEYS[1], '1', 'EX', 86400)
            redis.call('HSET', KEYS[3], 'w', math.floor(now / H), 'c', c + 1, 'p', p)
            redis.call('PEXPIRE', KEYS[3], 2 * H)
            return {'ok'}
            """)

    /// Links a Telegram chat to an existing user (the v1 telegram channel then reaches it).
    /// KEYS: 1 user; ARGV: 1 clock, 2 chat id. Returns 1, or 0 when there is no such user.
    public static let linkChat = RedisScript(
        """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        redis.call('HSET', KEYS[1], 'tg', ARGV[2])
        return 1
        """)

    public static let named: [String: RedisScript] = [
        "send": send, "cancelSend": cancelSend, "activate": activate, "check": check, "refresh": refresh,
        "revoke": revoke, "hourlyCounter": hourlyCounter, "giveBack": giveBack, "unlock": unlock,
        "channelCreate": channelCreate, "channelCancel": channelCancel, "channelCheck": channelCheck, "botCode": botCode,
        "linkChat": linkChat, "resetPassword": resetPassword, "passwordBegin": passwordBegin,
        "passwordFinish": passwordFinish, "rehashPassword": rehashPassword, "importUser": importUser,
        "bindSocket": bindSocket, "checkSocket": checkSocket, "closeSocket": closeSocket,
        "hubSocketLease": hubSocketLease,
    ]

    public static var all: [RedisScript] { Array(named.values) }
}
