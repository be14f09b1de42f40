-- Replaces a password hash by a stronger one of the same password (after a sign-in with
-- parameters below the current ones), unless the password changed meanwhile.
-- Returns 1 when replaced, else 0.
if redis.call('HGET', user_key, 'pw') ~= old_hash then return 0 end
redis.call('HSET', user_key, 'pw', new_hash)
return 1
