--[[
  Sets a run's status (and the reason shown with it), and applies the run's retention in
  the same step: a run that ends here (cancelled, completed) gets its `finishedAt` and its
  keys an expiry; a run that is held or running again keeps its keys for good.
  A run that does not exist (pruned, expired) is not brought back as a bare meta hash.

  KEYS[1]      run meta hash
  KEYS[2 ..]   every key of the run (runKeyList), the meta hash among them
  ARGV[1] status
  ARGV[2] reason ('' for none)
  ARGV[3] retention in ms (0 = keep ended runs forever)
  ARGV[4] optional: the statuses the run may be in, comma-separated ('' or absent = any).
          A control checks the status it saw and writes in one step: a run a worker
          completed or held meanwhile is left as the worker left it.
  Returns 1 when the status was written, 0 when the run does not exist, -1 when the run is
  in a status ARGV[4] does not list.
]]
local meta = KEYS[1]
local status, reason, retention_ms, from = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4] or ''

if not redis.call('HGET', meta, 'id') then
  return 0
end
local previous = redis.call('HGET', meta, 'status')
if from ~= '' and not string.find(',' .. from .. ',', ',' .. tostring(previous) .. ',', 1, true) then
  return -1
end
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))

redis.call('HSET', meta, 'status', status, 'updatedAt', now, 'statusReason', reason)
local ended = status == 'completed' or status == 'cancelled'
local was_ended = previous == 'completed' or previous == 'cancelled'
if ended and redis.call('HEXISTS', meta, 'finishedAt') == 0 then
  redis.call('HSET', meta, 'finishedAt', now)
end
brandq_retain_run(2, status, ended and not was_ended, retention_ms)
return 1
