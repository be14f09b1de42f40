-- Deletes a channel-API code whose message could not be delivered, if it is still that one.
-- Returns 1.
if redis.call('HGET', code_key, 'i') == code_id then redis.call('DEL', code_key) end
return 1
