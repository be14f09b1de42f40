-- Gives back one unit `hourlyCounter` took, when the action it guarded did not happen or
-- did not count (a right code). Without the prelude: it only needs the hour. A unit taken
-- in an earlier hour is not given back (it sits in the previous hour's count, which
-- `hourlyCounter` weighs down as the hour passes); nor is a counter that is gone.
-- Returns 1 when a unit was given back, else 0.
local now
if clock ~= '' then now = tonumber(clock) else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local v = redis.call('HMGET', counter_key, 'w', 'c')
if tonumber(v[1] or '-1') ~= math.floor(now / 3600000) or tonumber(v[2] or '0') < 1 then return 0 end
redis.call('HINCRBY', counter_key, 'c', -1)
return 1
