--[[
  Holds a provider for the whole fleet after a 429. Never shortens a later cooldown that
  another worker already set.

  KEYS[1] cooldown string (until server ms)   KEYS[2] stats hash
  ARGV[1] 'after' (ARGV[2] is ms from now, on the Redis clock) or 'until' (epoch ms)
  ARGV[2] ms
  Returns the cooldown end in server ms that is now in force (0 if none).
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local value = tonumber(ARGV[2])
local untilMs = ARGV[1] == 'after' and now + value or value
local current = tonumber(redis.call('GET', KEYS[1])) or 0
redis.call('HINCRBY', KEYS[2], 'cooldowns', 1)
if untilMs > current and untilMs > now then
  redis.call('SET', KEYS[1], math.ceil(untilMs), 'PX', math.ceil(untilMs - now))
  return math.ceil(untilMs)
end
if current > now then
  return current
end
return 0
