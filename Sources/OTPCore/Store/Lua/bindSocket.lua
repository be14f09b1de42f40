-- Binds a hub socket to a session (the hash of its cookie) for ttl_ms, or renews the
-- binding while the socket is open. A socket bound to another session stays as it is.
-- Returns 1 when bound (or renewed), 0 when the socket is bound to another session.
local bound = redis.call('GET', socket_key)
if bound and not same(bound, session_hash) then return 0 end
redis.call('SET', socket_key, session_hash, 'PX', tonumber(ttl_ms))
return 1
