public import RedisClient

/// The Lua scripts: every state change that must be atomic across replicas is one of these.
///
/// Every key a script touches shares the hash tag `{app:user}` of its KEYS (keys it derives,
/// such as a refresh-token family, are built from a prefix with the same tag), so each script
/// runs on one Redis Cluster slot. Time comes from Redis (`TIME`), one clock for all replicas.
/// docs/redis-keys.md describes the keys and fields.
public enum Scripts {
    /// Shared helpers, prepended to the scripts that need them.
    ///
    /// Hourly quotas use a sliding-window counter: the count of the current fixed hour plus the
    /// previous hour's count weighted by how much of it still overlaps the last 60 minutes.
    /// O(1) memory per identifier, and never more than the limit in any fixed hour.
    static let prelude = """
        local function now_ms()
          local t = redis.call('TIME')
          return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
        end
        -- window state: w = hour index, <c> = count this hour, <p> = count the hour before
        local function window(q, now, cf, pf)
          local hour = math.floor(now / 3600000)
          local w = tonumber(q.w or '-1')
          local c, p = tonumber(q[cf] or '0'), tonumber(q[pf] or '0')
          if w == hour - 1 then p, c = c, 0 elseif w ~= hour then p, c = 0, 0 end
          local elapsed = now - hour * 3600000
          local estimate = p * (3600000 - elapsed) / 3600000 + c
          return c, p, estimate, elapsed
        end
        -- seconds until one more event fits under the limit
        local function retry_after(c, p, limit, elapsed)
          local wait
          if c >= limit then
            wait = (3600000 - elapsed) + 3600000 * (1 - limit / c)
          else
            wait = 3600000 * (1 - (limit - c) / p) - elapsed
          end
          return math.max(1, math.ceil(wait / 1000))
        end
        local function load_quota(key)
          local v = redis.call('HMGET', key, 'w', 'sc', 'sp', 'fc', 'fp', 'n')
          return {w = v[1], sc = v[2], sp = v[3], fc = v[4], fp = v[5], n = v[6]}
        end
        -- Quotas live in the user's hash when there is a user (no key of their own: less memory
        -- per pending login), else in a quota key that expires two hours after its last change.
        local function quota_key(user_key, own_key)
          if redis.call('EXISTS', user_key) == 1 then return user_key end
          return own_key
        end
        local function save_quota(key, own_key, now, sc, sp, fc, fp, n)
          redis.call('HSET', key, 'w', math.floor(now / 3600000), 'sc', sc, 'sp', sp, 'fc', fc, 'fp', fp, 'n', n)
          if key == own_key then redis.call('PEXPIRE', key, 7200000) end
        end
        -- constant-time comparison of two byte strings of equal length
        local function same(a, b)
          if not a or not b or #a ~= #b then return false end
          local d = 0
          for i = 1, #a do d = bit.bor(d, bit.bxor(string.byte(a, i), string.byte(b, i))) end
          return d == 0
        end
        local function user_fields(key)
          return redis.call('HMGET', key, 'id', 'email', 'phone', 'first_name', 'last_name', 'created_at', 'last_login_at', 'status')
        end

        """

    /// Creates (or replaces) the OTP of one identifier and purpose, after its quotas.
    ///
    /// KEYS: 1 user, 2 otp, 3 quota, 4 idempotency record (any key of the tag when unused)
    /// ARGV: 1 mode (register | login | login_conceal), 2 otp id (the part after the user id),
    ///       3 code hash, 4 channel, 5 ttl ms, 6 cooldown ms, 7 sends per hour, 8 idempotent (1/0),
    ///       9 user id, 10 identifier field (email/phone), 11 identifier, 12 first name,
    ///       13 last name, 14 unverified user ttl s
    /// Returns {'ok'|'decoy', otp id, created 1/0, telegram chat id or ''}, {'idem', otp id,
    ///         created}, or {'exists'} {'no_user'} {'blocked'} {'tg_unlinked'} {'cooldown', s} {'rate', s}
    public static let send = RedisScript(
        prelude + """
            if ARGV[8] == '1' then
              local prev = redis.call('GET', KEYS[4])
              if prev then
                local sep = string.find(prev, ':', 1, true)
                return {'idem', string.sub(prev, sep + 1), tonumber(string.sub(prev, 1, sep - 1))}
              end
            end
            local mode = ARGV[1]
            local status = redis.call('HGET', KEYS[1], 'status')
            if status == 'blocked' then return {'blocked'} end
            if mode == 'register' and status == 'active' then return {'exists'} end
            local decoy = false
            if (mode == 'login' or mode == 'login_conceal') and not status then
              if mode == 'login' then return {'no_user'} end
              decoy = true
            end
            local chat = ''
            if ARGV[4] == 'telegram' and not decoy then
              chat = redis.call('HGET', KEYS[1], 'tg')
              if not chat then return {'tg_unlinked'} end
            end
            local now = now_ms()
            local qkey = KEYS[3]
            if status or not decoy then qkey = KEYS[1] end
            local q = load_quota(qkey)
            local n = tonumber(q.n or '0')
            if now < n then return {'cooldown', math.max(1, math.ceil((n - now) / 1000))} end
            local limit = tonumber(ARGV[7])
            local sc, sp, estimate, elapsed = window(q, now, 'sc', 'sp')
            if estimate + 1 > limit then return {'rate', retry_after(sc, sp, limit, elapsed)} end
            local fc, fp = window(q, now, 'fc', 'fp')
            save_quota(qkey, KEYS[3], now, sc + 1, sp, fc, fp, now + tonumber(ARGV[6]))
            local created = 0
            if not status and not decoy then
              redis.call('HSET', KEYS[1], 'id', ARGV[9], ARGV[10], ARGV[11], 'first_name', ARGV[12],
                'last_name', ARGV[13], 'status', 'unverified', 'created_at', math.floor(now / 1000))
              redis.call('EXPIRE', KEYS[1], tonumber(ARGV[14]))
              created = 1
            end
            redis.call('DEL', KEYS[2])
            redis.call('HSET', KEYS[2], 'i', ARGV[2], 'h', ARGV[3], 'a', 0)
            redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[5]))
            if ARGV[8] == '1' then redis.call('SET', KEYS[4], created .. ':' .. ARGV[9] .. '.' .. ARGV[2], 'EX', 86400) end
            if decoy then return {'decoy', ARGV[9] .. '.' .. ARGV[2], 0, ''} end
            return {'ok', ARGV[9] .. '.' .. ARGV[2], created, chat}
            """)

    /// Undoes a send whose delivery failed: the OTP is deleted (if it is still that one), the
    /// send and the cooldown are given back, the idempotency record is dropped.
    ///
    /// KEYS: 1 otp, 2 quota, 3 idempotency record, 4 user; ARGV: 1 otp id (after the user id),
    /// 2 user created (1/0)
    public static let cancelSend = RedisScript(
        prelude + """
            if redis.call('HGET', KEYS[1], 'i') == ARGV[1] then redis.call('DEL', KEYS[1]) end
            local now = now_ms()
            local qkey = quota_key(KEYS[4], KEYS[2])
            local q = load_quota(qkey)
            if q.w then
              local sc, sp = window(q, now, 'sc', 'sp')
              local fc, fp = window(q, now, 'fc', 'fp')
              save_quota(qkey, KEYS[2], now, math.max(0, sc - 1), sp, fc, fp, 0)
            end
            local idem = redis.call('GET', KEYS[3])
            if idem and string.sub(idem, -#ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
            if ARGV[2] == '1' and redis.call('HGET', KEYS[4], 'status') == 'unverified' then redis.call('DEL', KEYS[4]) end
            return 1
            """)

    /// Checks a code. Right: the OTP is consumed, the user activated and signed in, and a
    /// refresh token (and its family) stored. Wrong: one attempt and one hourly failure used.
    ///
    /// KEYS: 1 otp, 2 quota, 3 user, 4 new refresh token, 5 new family
    /// ARGV: 1 otp id (after the user id), 2 code hash, 3 failures per hour, 4 refresh ttl s,
    ///       5 family id, 6 user id, 7 max attempts
    /// Returns {'ok', user fields…} or {'not_found'} {'invalid', remaining} {'exhausted'}
    ///         {'locked', s} {'blocked'}
    public static let activate = RedisScript(
        prelude + """
            local otp = redis.call('HMGET', KEYS[1], 'i', 'h', 'a')
            if not otp[1] or otp[1] ~= ARGV[1] then return {'not_found'} end
            local attempts, max = tonumber(otp[3]), tonumber(ARGV[7])
            if attempts >= max then return {'exhausted'} end
            local now = now_ms()
            local status = redis.call('HGET', KEYS[3], 'status')
            local qkey = KEYS[2]
            if status then qkey = KEYS[3] end
            local q = load_quota(qkey)
            local limit = tonumber(ARGV[3])
            local fc, fp, estimate, elapsed = window(q, now, 'fc', 'fp')
            if estimate + 1 > limit then return {'locked', retry_after(fc, fp, limit, elapsed)} end
            if not same(otp[2], ARGV[2]) then
              attempts = attempts + 1
              redis.call('HSET', KEYS[1], 'a', attempts)
              local sc, sp = window(q, now, 'sc', 'sp')
              save_quota(qkey, KEYS[2], now, sc, sp, fc + 1, fp, tonumber(q.n or '0'))
              return {'invalid', max - attempts}
            end
            redis.call('DEL', KEYS[1])
            if not status then return {'not_found'} end
            if status == 'blocked' then return {'blocked'} end
            if status == 'unverified' then
              redis.call('HSET', KEYS[3], 'status', 'active')
              redis.call('PERSIST', KEYS[3])
            end
            redis.call('HSET', KEYS[3], 'last_login_at', math.floor(now / 1000))
            local ttl = tonumber(ARGV[4])
            redis.call('HSET', KEYS[4], 'f', ARGV[5], 's', 'a')
            redis.call('EXPIRE', KEYS[4], ttl)
            redis.call('SET', KEYS[5], ARGV[6], 'EX', ttl)
            local u = user_fields(KEYS[3])
            table.insert(u, 1, 'ok')
            return u
            """)

    /// Rotates a refresh token: the presented one is marked used and a new one stored in the
    /// same family. A token presented a second time revokes its whole family.
    ///
    /// KEYS: 1 presented token, 2 new token, 3 user; ARGV: 1 family key prefix, 2 refresh ttl s
    /// Returns {'ok', user fields…} or {'invalid'} {'revoked'} {'reused'} {'blocked'}
    public static let refresh = RedisScript(
        prelude + """
            local token = redis.call('HMGET', KEYS[1], 'f', 's')
            if not token[1] then return {'invalid'} end
            local family = ARGV[1] .. token[1]
            if redis.call('EXISTS', family) == 0 then return {'revoked'} end
            if token[2] ~= 'a' then
              redis.call('DEL', family)
              return {'reused'}
            end
            local status = redis.call('HGET', KEYS[3], 'status')
            if not status or status == 'blocked' then
              redis.call('DEL', family)
              return {'blocked'}
            end
            local ttl = tonumber(ARGV[2])
            redis.call('HSET', KEYS[1], 's', 'r')
            redis.call('HSET', KEYS[2], 'f', token[1], 's', 'a')
            redis.call('EXPIRE', KEYS[2], ttl)
            redis.call('EXPIRE', family, ttl)
            local u = user_fields(KEYS[3])
            table.insert(u, 1, 'ok')
            return u
            """)

    /// Revokes the family of a refresh token. KEYS: 1 token; ARGV: 1 family key prefix.
    public static let revoke = RedisScript(
        """
        local family = redis.call('HGET', KEYS[1], 'f')
        if family then redis.call('DEL', ARGV[1] .. family) end
        return family and 1 or 0
        """)

    /// Counts one send against a client IP's hourly quota (its own hash tag: one key).
    ///
    /// KEYS: 1 ip quota; ARGV: 1 limit, 2 delta (1 to take, -1 to give back)
    /// Returns {'ok'} or {'rate', s}
    public static let ipQuota = RedisScript(
        prelude + """
            local now = now_ms()
            local q = load_quota(KEYS[1])
            local limit = tonumber(ARGV[1])
            local sc, sp, estimate, elapsed = window(q, now, 'sc', 'sp')
            local delta = tonumber(ARGV[2])
            if delta > 0 and estimate + delta > limit then return {'rate', retry_after(sc, sp, limit, elapsed)} end
            redis.call('HSET', KEYS[1], 'w', math.floor(now / 3600000), 'sc', math.max(0, sc + delta), 'sp', sp)
            redis.call('PEXPIRE', KEYS[1], 7200000)
            return {'ok'}
            """)

    public static let named: [String: RedisScript] = [
        "send": send, "cancelSend": cancelSend, "activate": activate, "refresh": refresh, "revoke": revoke,
        "ipQuota": ipQuota,
    ]

    public static var all: [RedisScript] { Array(named.values) }
}
