--[[
  A run's own ceiling at one provider (`--max-rpm`): calls paced evenly, one every
  60000 / maxRpm ms, so no 60-second window ever holds more than maxRpm of them.
  A caller told to wait is told a slot of its own: the first the next slot, the second the
  one after, and so on. Told all the same wait, every refused job of the run would come
  back at once, one would go and the rest bounce again: work growing with the backlog.
  KEYS[1] the run's ceiling at the provider (hash: next = earliest ms the next call may
          start, promised = the latest slot told to a waiting caller). Expires on its own.
  ARGV[1] maxRpm (> 0)
  Returns 0 when the call may start now (its slot is taken), else the ms to wait.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = 60000 / tonumber(ARGV[1])
local state = redis.call('HMGET', KEYS[1], 'next', 'promised')
local next_at = tonumber(state[1]) or 0
local promised = tonumber(state[2]) or 0
if next_at <= now then
  local following = now + interval
  redis.call('HSET', KEYS[1], 'next', string.format('%.17g', following))
  redis.call('PEXPIRE', KEYS[1], math.ceil(math.max(following, promised) - now) + 1000)
  return 0
end
promised = math.max(promised + interval, next_at)
redis.call('HSET', KEYS[1], 'promised', string.format('%.17g', promised))
redis.call('PEXPIRE', KEYS[1], math.ceil(promised - now) + 1000)
return math.ceil(promised - now)
