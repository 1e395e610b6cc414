--[[
  A run's timeline: counters per time bucket, at most 256 buckets whatever the run's length.
  Not a script of its own: run-scripts.ts puts it in front of each script that records into
  it (record-timeline.lua; record-outcome.lua counts each brand done or failed in the same
  step as its outcome).

  The hash (runKeys(id).timeline): `start` (server ms of the first record), `width` (ms per
  bucket, 10 s at first) and `<bucket>:<counter>` -> integer, for counters that are not 0.
  Bucket b holds what happened in [start + b*width, start + (b+1)*width); a time before
  `start` (the clock went back) counts in bucket 0. When a record would fall in bucket 256
  or later, the width doubles as many times as needed and every bucket b merges into
  b / 2^k (floor): the counters' sums are kept exactly (HINCRBY, 64-bit integers), and the
  buckets are the same as if the wider width had been used from the start.

  Best-effort by design: nothing is written for a run whose meta is gone (a pruned run is
  not brought back), or when the key holds something else than a hash. A timeline created
  after its run ended gets the run's expiry, so it never outlives the run's other keys.
]]
local BRANDQ_TIMELINE_BUCKETS = 256
local BRANDQ_TIMELINE_FIRST_WIDTH_MS = 10000

-- counters: a flat list of counter name, integer amount (a string or a number).
local function brandq_timeline_add(timeline, meta, now, counters)
  if redis.call('EXISTS', meta) == 0 then
    return 0
  end
  local kind = redis.call('TYPE', timeline).ok
  if kind ~= 'hash' and kind ~= 'none' then
    return 0
  end
  local fields = redis.call('HMGET', timeline, 'start', 'width')
  local start, width = tonumber(fields[1]), tonumber(fields[2])
  if not start or not width then
    start, width = now, BRANDQ_TIMELINE_FIRST_WIDTH_MS
    redis.call('HSET', timeline, 'start', start, 'width', width)
  end
  local bucket = math.max(0, math.floor((now - start) / width))
  if bucket >= BRANDQ_TIMELINE_BUCKETS then
    local factor = 1
    while math.floor(bucket / factor) >= BRANDQ_TIMELINE_BUCKETS do
      factor = factor * 2
    end
    -- Every field leaves before any is added to: a merged bucket's target may be a bucket
    -- that moves itself.
    local all = redis.call('HGETALL', timeline)
    local moves = {}
    for i = 1, #all, 2 do
      local b, counter = string.match(all[i], '^(%d+):(.+)$')
      if b then
        local merged = math.floor(tonumber(b) / factor)
        if merged ~= tonumber(b) then
          redis.call('HDEL', timeline, all[i])
          moves[#moves + 1] = { merged .. ':' .. counter, all[i + 1] }
        end
      end
    end
    for _, move in ipairs(moves) do
      redis.call('HINCRBY', timeline, move[1], move[2])
    end
    width = width * factor
    bucket = math.floor(bucket / factor)
    redis.call('HSET', timeline, 'width', width)
  end
  for i = 1, #counters, 2 do
    if tonumber(counters[i + 1]) ~= 0 then
      redis.call('HINCRBY', timeline, bucket .. ':' .. counters[i], counters[i + 1])
    end
  end
  if kind == 'none' then
    local ttl = redis.call('PTTL', meta)
    if ttl > 0 then
      redis.call('PEXPIRE', timeline, ttl)
    end
  end
  return 1
end
