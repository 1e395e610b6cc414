--[[
  Records the outcome of one brand of a run, exactly once, and keeps the run's counters
  and status consistent with it in the same step.

  KEYS[1] run meta hash
  KEYS[2] results hash (brand key -> result JSON)
  KEYS[3] failed hash (brand key -> failure JSON)
  KEYS[4] timeline hash: a recorded success counts as `done`, a new failure as `failed`
  KEYS[5] latest list: the keys of the newest successes, newest first, capped (ARGV[5])
  KEYS[6 ..] every key of the run (runKeyList), for its retention when this outcome ends it
  ARGV[1] 'success' | 'failure'
  ARGV[2] brand key
  ARGV[3] JSON payload
  ARGV[4] retention in ms (0 = keep ended runs forever)
  ARGV[5] how many of the newest successes the latest list keeps

  A success is final: a later failure of the same brand (a duplicate delivery after a
  crash) is ignored. A success after a failure (a retry of a failed brand) moves the brand
  from failed to succeeded. Returns {recorded (0|1), succeeded, failed, status}.
]]
local meta, results, failed = KEYS[1], KEYS[2], KEYS[3]
local outcome, key, payload = ARGV[1], ARGV[2], ARGV[3]

local t = redis.call('TIME')
local now_ms = t[1] * 1000 + math.floor(t[2] / 1000)
local now = tostring(now_ms)

local recorded = 0
if redis.call('HEXISTS', results, key) == 0 then
  if outcome == 'success' then
    redis.call('HSET', results, key, payload)
    redis.call('HINCRBY', meta, 'succeeded', 1)
    if redis.call('HDEL', failed, key) == 1 then
      redis.call('HINCRBY', meta, 'failed', -1)
    end
    brandq_timeline_add(KEYS[4], meta, now_ms, { 'done', 1 })
    redis.call('LPUSH', KEYS[5], key)
    redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[5]) - 1)
    recorded = 1
  else
    if redis.call('HSET', failed, key, payload) == 1 then
      redis.call('HINCRBY', meta, 'failed', 1)
      brandq_timeline_add(KEYS[4], meta, now_ms, { 'failed', 1 })
    end
    recorded = 1
  end
end

local fields = redis.call('HMGET', meta, 'succeeded', 'failed', 'total', 'status')
local succeeded = tonumber(fields[1]) or 0
local failedCount = tonumber(fields[2]) or 0
local total = tonumber(fields[3]) or 0
local status = fields[4] or 'running'

redis.call('HSET', meta, 'updatedAt', now)
if status == 'running' and succeeded + failedCount >= total then
  status = 'completed'
  redis.call('HSET', meta, 'status', status, 'finishedAt', now)
  brandq_retain_run(6, status, true, tonumber(ARGV[4]))
end
return { recorded, succeeded, failedCount, status }
