-- Ends a hub socket's binding (the socket closed).
-- Returns 1 when a binding of that session was deleted, else 0.
if not same(redis.call('GET', socket_key), session_hash) then return 0 end
redis.call('DEL', socket_key)
return 1
