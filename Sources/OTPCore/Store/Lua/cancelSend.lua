-- Undoes a send whose delivery failed: the OTP is deleted (if it is still that one), the
-- idempotency record is dropped, and a user the send created is deleted. The send and the
-- cooldown are given back, unless the quota is kept (the gateway was reached: the send
-- counts); a kept quota of a user being deleted moves to the identifier's own quota key,
-- so deleting the user does not forget it. Returns 1.
if redis.call('HGET', otp_key, 'i') == otp_suffix then redis.call('DEL', otp_key) end
local now = now_ms()
local keep = keep_quota == '1'
local qkey, q, u = identifier_quota(user_key, own_quota_key, 'status')
local delete_user = user_created == '1' and u ~= nil and u[10] == 'unverified'
if q.w and (not keep or (delete_user and qkey ~= own_quota_key)) then
  local sc, sp = window(q, now, 'sc', 'sp')
  local fc, fp = window(q, now, 'fc', 'fp')
  local n = q.n
  if not keep then sc, n = math.max(0, sc - 1), 0 end
  local target = qkey
  if delete_user then target = own_quota_key end
  save_quota(target, own_quota_key, now, {sc = sc, sp = sp, fc = fc, fp = fp, n = n, cf = q.cf, lk = q.lk})
end
local idem = redis.call('GET', idempotency_key)
if idem and string.sub(idem, -#otp_suffix) == otp_suffix then redis.call('DEL', idempotency_key) end
if delete_user then redis.call('DEL', user_key) end
return 1
