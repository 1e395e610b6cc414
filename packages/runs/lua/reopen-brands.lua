--[[
  Takes failed brands of a run back to pending so they can be processed again
  (--retry-failed), and puts the run back to running.

  KEYS[1] run meta hash
  KEYS[2] failed hash
  ARGV    brand keys
  Returns the number of brands reopened.
]]
local reopened = 0
for _, key in ipairs(ARGV) do
  reopened = reopened + redis.call('HDEL', KEYS[2], key)
end
if reopened > 0 then
  redis.call('HINCRBY', KEYS[1], 'failed', -reopened)
end
redis.call('HSET', KEYS[1], 'status', 'running', 'statusReason', '')
redis.call('HDEL', KEYS[1], 'finishedAt')
return reopened
