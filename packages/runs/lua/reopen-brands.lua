--[[
  Takes failed brands of a run back to pending so they can be processed again
  (--retry-failed), and resumes the run: running while any brand is still open, else
  completed. A resume that arrives after the last outcome (a held run whose final brands
  finished meanwhile, or one resumed twice) must not leave the run "running" with
  nothing left to record an outcome for.

  The run's retention follows: running again, its keys lose their expiry; completed by
  this call (it was held), they get one; already ended (completed, cancelled), they keep
  the expiry they have.

  KEYS[1] run meta hash
  KEYS[2] failed hash
  KEYS[3 ..] every key of the run (runKeyList)
  ARGV[1] retention in ms (0 = keep ended runs forever)
  ARGV[2] the statuses the run may be reopened from, comma-separated ('' = any): checked
          here, in the same step, so a cancel (or a pause) that lands between a control's
          look at the run and this call is never overwritten
  ARGV[3 ..] brand keys
  Returns {reopened, status}, or {-1, status} when the run's status is not one it may be
  reopened from (nothing written).
]]
local meta, failed = KEYS[1], KEYS[2]
local retention_ms = tonumber(ARGV[1])
local allowed = ARGV[2]
local current = redis.call('HGET', meta, 'status') or ''
if allowed ~= '' and not string.find(',' .. allowed .. ',', ',' .. current .. ',', 1, true) then
  return { -1, current }
end
local reopened = 0
for i = 3, #ARGV do
  reopened = reopened + redis.call('HDEL', failed, ARGV[i])
end
if reopened > 0 then
  redis.call('HINCRBY', meta, 'failed', -reopened)
end

local fields = redis.call('HMGET', meta, 'succeeded', 'failed', 'total', 'finishedAt', 'status')
local previous = fields[5]
local processed = (tonumber(fields[1]) or 0) + (tonumber(fields[2]) or 0)
local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))

local status = 'running'
if processed >= (tonumber(fields[3]) or 0) then
  status = 'completed'
  redis.call('HSET', meta, 'status', status, 'statusReason', '', 'updatedAt', now, 'finishedAt', fields[4] or now)
else
  redis.call('HSET', meta, 'status', status, 'statusReason', '', 'updatedAt', now)
  redis.call('HDEL', meta, 'finishedAt')
end
brandq_retain_run(3, status, previous ~= 'completed' and previous ~= 'cancelled', retention_ms)
return { reopened, status }
