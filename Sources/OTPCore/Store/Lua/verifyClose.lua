-- Ends a Twilio Verify verification if it is still the one of sid: canceled or approved by
-- the caller, or a new one whose code could not be delivered. At most once: the first call
-- deletes it, any later one finds nothing.
-- Returns {'ok', To, channel, created ms, now ms, send attempts} or {'not_found'}
local v = redis.call('HMGET', verification_key, 'i', 't', 'c', 'd', 'l')
if v[1] ~= sid then return {'not_found'} end
redis.call('DEL', verification_key)
return {'ok', v[2], v[3], tonumber(v[4]), now_ms(), v[5]}
