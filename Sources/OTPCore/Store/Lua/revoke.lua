-- Revokes the family of a refresh token. Returns 1 when a family was revoked, else 0.
local family = redis.call('HGET', token_key, 'f')
if family then redis.call('DEL', family_prefix .. family) end
return family and 1 or 0
