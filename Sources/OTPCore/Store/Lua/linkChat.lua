-- Links a Telegram chat to an existing user (the v1 telegram channel then reaches it).
-- Returns 1, or 0 when there is no such user.
if redis.call('EXISTS', user_key) == 0 then return 0 end
redis.call('HSET', user_key, 'tg', chat_id)
return 1
