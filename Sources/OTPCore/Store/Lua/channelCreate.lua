-- Stores a channel-API code (the caller's), replacing the destination's earlier one. Returns 1.
redis.call('DEL', code_key)
redis.call('HSET', code_key, 'i', code_id, 'h', code_hash, 'a', 0)
redis.call('PEXPIRE', code_key, tonumber(lifetime_ms))
return 1
