--[[
  Deletes every key of a run, but only while it is still ended (completed or cancelled)
  and ended no later than the cutoff: a run resumed or extended since it was listed for
  pruning is kept.

  KEYS[1]    run meta hash
  KEYS[2 ..] every key of the run (runKeyList)
  ARGV[1]    cutoff (server ms): the run must have ended at or before it
  Returns the number of keys deleted, or -1 when the run is no longer prunable.
]]
local fields = redis.call('HMGET', KEYS[1], 'status', 'finishedAt', 'updatedAt')
local status = fields[1]
if status ~= 'completed' and status ~= 'cancelled' then
  return -1
end
local ended_at = tonumber(fields[2]) or tonumber(fields[3]) or 0
if ended_at > tonumber(ARGV[1]) then
  return -1
end
local deleted = 0
for i = 2, #KEYS do
  deleted = deleted + redis.call('DEL', KEYS[i])
end
return deleted
