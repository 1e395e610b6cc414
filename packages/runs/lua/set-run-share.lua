--[[
  Sets a run's weight and its own ceiling (fair shares between runs), if the run exists.
  KEYS[1] the run's meta hash
  ARGV[1] weight ('' leaves it)
  ARGV[2] max calls per minute at each provider ('' leaves it, '0' lifts the ceiling)
  Returns 1, or 0 when the run does not exist.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' then redis.call('HSET', KEYS[1], 'weight', ARGV[1]) end
if ARGV[2] == '0' then
  redis.call('HDEL', KEYS[1], 'maxRpm')
elseif ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'maxRpm', ARGV[2])
end
return 1
