-- Whether a hub socket is open and bound to a session (constant-time comparison): 1 or 0.
return same(redis.call('GET', socket_key), session_hash) and 1 or 0
