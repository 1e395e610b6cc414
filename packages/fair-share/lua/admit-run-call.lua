--[[
  A run's own ceiling at one provider (`--max-rpm`): calls paced evenly, one every
  60000 / maxRpm ms, so no 60-second window ever holds more than maxRpm of them.
  KEYS[1] the run's ceiling key at the provider (string: the earliest ms the next call may start)
  ARGV[1] maxRpm (> 0)
  Returns 0 when the call may start now (its slot is taken), else the ms to wait.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = 60000 / tonumber(ARGV[1])
local next_at = tonumber(redis.call('GET', KEYS[1])) or 0
if next_at > now then return math.ceil(next_at - now) end
local following = math.max(next_at, now) + interval
redis.call('SET', KEYS[1], string.format('%.17g', following), 'PX', math.ceil(interval) + 1000)
return 0
