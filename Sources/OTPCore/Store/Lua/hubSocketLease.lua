-- The open hub sockets of one client IP (an IPv6 /64), across replicas: a sorted set whose
-- members are `<hard end ms>:<socket id>` scored by their lease's expiry (ms). A socket
-- takes a lease when it opens and renews it with its binding; it is removed when the socket
-- closes, and a lease not renewed (a replica that died) expires. At most `cap` leases live
-- at once. A refusal says when a place frees at the latest: each socket is gone by its
-- hard end (socket_max_seconds after it opened) or, if its replica died, its lease's end.
-- action: acquire | renew | release.
-- Returns {'ok'} or {'full', s until a place frees at the latest}
local now = now_ms()
if action == 'release' then
  redis.call('ZREM', sockets_key, member)
  return {'ok'}
end
redis.call('ZREMRANGEBYSCORE', sockets_key, '-inf', now)
local held = redis.call('ZSCORE', sockets_key, member)
if not held and redis.call('ZCARD', sockets_key) >= tonumber(cap) then
  local soonest
  local leases = redis.call('ZRANGE', sockets_key, 0, -1, 'WITHSCORES')
  for i = 1, #leases, 2 do
    local sep = string.find(leases[i], ':', 1, true)
    local ends = math.max(tonumber(string.sub(leases[i], 1, sep - 1)), tonumber(leases[i + 1]))
    if not soonest or ends < soonest then soonest = ends end
  end
  return {'full', seconds(soonest - now)}
end
local expires = now + tonumber(lease_ms)
redis.call('ZADD', sockets_key, expires, member)
local last = redis.call('ZRANGE', sockets_key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', sockets_key, math.max(expires, tonumber(last[2] or expires)))
return {'ok'}
