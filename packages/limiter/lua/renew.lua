--[[
  Extends a live holder's concurrency lease. A lease that was already reclaimed is not
  recreated: its slot may have gone to another worker meanwhile.

  KEYS[1] leases zset
  ARGV[1] permit id   ARGV[2] lease ms
  Returns the new expiry in server ms, or 0 if the lease is gone.
]]
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local untilMs = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], 'XX', untilMs, ARGV[1])
return untilMs
