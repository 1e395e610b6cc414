--[[
  Adds an entry to a run's history, newest first, keeping the latest `cap` entries. The
  history lives as long as the rest of the run: an ended run's keys carry an expiry
  (retention.lua), and a history written after it ended (the entry saying who cancelled
  it) takes the meta's, so it never outlives the run. A run that does not exist gets no
  history.

  KEYS[1] run meta hash
  KEYS[2] run history list (same hash tag)
  ARGV[1] entry (JSON)
  ARGV[2] cap (entries kept)
  Returns 1 when the entry was added, 0 when the run does not exist.
]]
local meta, history = KEYS[1], KEYS[2]
if redis.call('HEXISTS', meta, 'id') == 0 then
  return 0
end
redis.call('LPUSH', history, ARGV[1])
redis.call('LTRIM', history, 0, tonumber(ARGV[2]) - 1)
local ttl = redis.call('PTTL', meta)
if ttl > 0 then
  redis.call('PEXPIRE', history, ttl)
end
return 1
