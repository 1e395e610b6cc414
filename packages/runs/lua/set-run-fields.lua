--[[
  Sets fields of a run's meta (its options: weight, ceiling, LLM tier), if the run exists.
  KEYS[1] the run's meta hash
  ARGV    field, value pairs; an empty value removes the field
  Returns 1, or 0 when the run does not exist.
]]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  else
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
