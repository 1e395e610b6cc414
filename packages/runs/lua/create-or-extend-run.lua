--[[
  Creates a run if it does not exist, or adds the brands it does not hold yet, and derives
  its total from its brands in the same step. Two producers on the same run (or one
  re-enqueueing a changed list) can then never overwrite each other's counters: a brand
  is added once (HSETNX), the total is always HLEN of the brands, never a written number.

  KEYS[1] run meta hash
  KEYS[2] brands hash (brand key -> job payload)
  KEYS[3] skipped hash (row-<n> -> skip JSON)
  KEYS[4] recipe string (the recipe JSON)
  KEYS[5 ..] every key of the run (runKeyList), for its retention
  ARGV[1] run id
  ARGV[2] source JSON
  ARGV[3] source key
  ARGV[4] retention in ms (0 = keep ended runs forever)
  ARGV[5] recipe JSON
  ARGV[6] recipe fingerprint
  ARGV[7] recipe name
  ARGV[8] '1' to replace a run's different recipe (--force), '0' to refuse
  ARGV[9] the default recipe's fingerprint: what a run from before recipes follows
  ARGV[10] n, the number of brands that follow
  ARGV[11 .. 10+2n]  brand key, payload pairs
  ARGV[11+2n ..]     skipped row field, payload pairs (kept only by the call that creates the run)

  Recipe: a new run stores it; a run that follows another recipe (a run from before recipes
  follows the default one) is refused, nothing written, unless told to replace it.

  Status: a new run is running (completed if it has no brand). A running or completed run
  is running while any brand has no outcome and completed otherwise, so a completed run
  that gains brands runs again and a run is never "running" with nothing left to record.
  A held run (paused, budget_exhausted) or a cancelled one keeps its status.
  Retention: a run running again (an extend of an ended, expiring run) or held loses its
  keys' expiry; a run that ends in this call gets one; an ended run keeps the one it has.

  Returns {created (0|1), added, total, status}, {-1, owner source key} when the run
  belongs to another source, or {-2, its recipe's name, its fingerprint} when it follows
  another recipe (nothing written in either case).
]]
local meta, brands, skipped, recipe = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local runId, source, sourceKey = ARGV[1], ARGV[2], ARGV[3]
local retention_ms = tonumber(ARGV[4])
local recipeJson, fingerprint, recipeName, replace, legacy = ARGV[5], ARGV[6], ARGV[7], ARGV[8] == '1', ARGV[9]
local n = tonumber(ARGV[10])
local first_brand = 11

local owner = redis.call('HGET', meta, 'sourceKey')
if owner and owner ~= sourceKey then
  return { -1, owner }
end
local followed = redis.call('HMGET', meta, 'recipeFingerprint', 'recipeName')
local current = followed[1] or (owner and legacy) or nil
if current and current ~= fingerprint and not replace then
  return { -2, followed[2] or 'brand-facts', current }
end
if followed[1] ~= fingerprint then
  redis.call('SET', recipe, recipeJson)
  redis.call('HSET', meta, 'recipeFingerprint', fingerprint, 'recipeName', recipeName)
end

local t = redis.call('TIME')
local now = tostring(t[1] * 1000 + math.floor(t[2] / 1000))

local added = 0
for i = first_brand, first_brand - 1 + 2 * n, 2 do
  added = added + redis.call('HSETNX', brands, ARGV[i], ARGV[i + 1])
end

local created = 0
if not owner then
  created = 1
  for i = first_brand + 2 * n, #ARGV, 2 do
    redis.call('HSET', skipped, ARGV[i], ARGV[i + 1])
  end
  redis.call('HSET', meta, 'id', runId, 'source', source, 'sourceKey', sourceKey, 'status', 'running',
    'succeeded', 0, 'failed', 0, 'skipped', redis.call('HLEN', skipped), 'createdAt', now)
end

local total = redis.call('HLEN', brands)
local fields = redis.call('HMGET', meta, 'succeeded', 'failed', 'status', 'finishedAt')
local processed = (tonumber(fields[1]) or 0) + (tonumber(fields[2]) or 0)
local status = fields[3]
local previous = status
if status == 'running' or status == 'completed' then
  if processed >= total then
    status = 'completed'
    redis.call('HSET', meta, 'status', status, 'finishedAt', fields[4] or now)
  else
    status = 'running'
    redis.call('HSET', meta, 'status', status)
    redis.call('HDEL', meta, 'finishedAt')
  end
end
redis.call('HSET', meta, 'total', total, 'updatedAt', now)
brandq_retain_run(5, status, created == 1 or previous ~= status, retention_ms)
return { created, added, total, status }
