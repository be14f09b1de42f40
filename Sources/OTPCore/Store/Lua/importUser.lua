-- Creates an imported user unless one exists (`otpd import users`): the fields a
-- registration writes; an unverified user expires like a fresh registration's. phone is ''
-- for none (or when the identifier is the phone). Returns 1 when created, 0 when the user
-- existed.
--
-- A registration's pending user that never activated (`unverified`, not imported: no `im`)
-- does not count as existing: it is replaced, and its pending codes deleted, so registering
-- someone's address first neither blocks nor alters their import.
if redis.call('EXISTS', user_key) == 1 then
  local u = redis.call('HMGET', user_key, 'status', 'im')
  if u[1] ~= 'unverified' or u[2] then return 0 end
  redis.call('DEL', user_key, auth_otp_key, reset_otp_key, hub_otp_key)
end
redis.call('HSET', user_key, 'id', user_id, identifier_field, identifier, 'first_name', first_name,
  'last_name', last_name, 'status', status, 'created_at', created_at_s, 'im', '1')
if phone ~= '' then redis.call('HSET', user_key, 'phone', phone) end
if status == 'unverified' then redis.call('PEXPIRE', user_key, tonumber(unverified_ttl_ms)) end
return 1
