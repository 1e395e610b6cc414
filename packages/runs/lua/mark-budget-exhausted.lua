--[[
  Holds a running run as budget_exhausted, but only under the budget the refusal was
  computed with. Every budget change bumps the ledger's `budget_epoch`; a worker's
  refusal that arrives after a `--resume --budget` carries the older epoch and changes
  nothing, so a late refusal can never undo a resume.

  KEYS[1] run meta hash
  KEYS[2] run ledger hash (same hash tag)
  ARGV[1] budget epoch of the refusal
  ARGV[2] reason
  Returns 1 when the run is now held, else 0 (not running, or another budget is in force).
]]
local meta, ledger = KEYS[1], KEYS[2]
if redis.call('HGET', meta, 'status') ~= 'running' then
  return 0
end
local epoch = tonumber(redis.call('HGET', ledger, 'budget_epoch')) or 0
if epoch ~= tonumber(ARGV[1]) then
  return 0
end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))
redis.call('HSET', meta, 'status', 'budget_exhausted', 'statusReason', ARGV[2], 'updatedAt', now)
return 1
