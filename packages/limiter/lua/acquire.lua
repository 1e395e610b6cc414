--[[
  Decides admission of one call to a provider against every rule at once, on the Redis
  clock, and either takes everything (a permit) or takes nothing and says how long to wait.

  KEYS[1] bucket hash (level, ts, holdUntil, last) KEYS[6] leases zset (id -> expiry)
  KEYS[2] requests zset (id -> expiry)            KEYS[7] stagger string (next slot ms)
  KEYS[3] window zset (entry id -> expiry)        KEYS[8] cooldown string (until ms)
  KEYS[4] window-tokens hash (entry id -> tokens) KEYS[9] stats hash
  KEYS[5] window-sum string                       KEYS[10] wait-slots string (last slot handed out)
  KEYS[11] pace hash (tat, last)

  ARGV[1] permit id          ARGV[5] margin ms added to log/window entries
  ARGV[2] requests/window    ARGV[6] effective token limit per window (0 = no token rule)
  ARGV[3] burst              ARGV[7] tokens to reserve
  ARGV[4] window ms          ARGV[8] concurrency cap of this class (0 = no lease)
  ARGV[9] lease ms           ARGV[10] stagger ms (0 = off)
  ARGV[11] ms the caller already waited (recorded in stats on admission)
  ARGV[12] the wake-up slot this caller was handed by its last wait (server ms, 0 = none)
  ARGV[13] jitter ratio      ARGV[14] jitter cap ms      ARGV[15] this caller's jitter draw in [-1, 1]
  ARGV[16] pace slice ms (0 = no token pacing)

  Returns {1, nowMs, leaseUntilMs (0 = none), reservedTokens}
       or {0, waitMs, reason, slotMs}   reason: cooldown|concurrency|requests|tokens|stagger
       or {-1, effectiveTokenLimit} when the request can never fit the token window.

  Wake-up slots. A wait whose end is known (cooldown, requests, tokens, stagger) is
  handed a slot of its own: the end of the wait, but at least one launch spacing
  (+/- jitter, drawn by the caller) after the last slot handed out. Callers told "wait 1.4 s" would otherwise all wake at the same
  moment, one would win and every other would ask again: round trips per admission would
  grow with the number of waiters. A caller that wakes in its slot and is refused again by
  less than one spacing (another caller took the capacity first) keeps its place instead
  of going to the back. Admission itself stays greedy: a slot orders wake-ups, it does not
  reserve capacity, so capacity freed early (a refund, a release) is never left unused.
  Concurrency waits have no known end and are polled instead (see below).

  Token pacing. Providers enforce their limits over short slices of the window too, so the
  tokens follow a GCRA schedule at effectiveTpm per window: `tat` (theoretical arrival time)
  is when the tokens admitted so far would have been spent at that rate. A call is admitted
  while tat <= now + paceMs (one slice of tolerance, so a call larger than a slice still goes
  once the schedule has caught up), and moves tat to max(tat, now) + tokens / rate. In any
  interval of length L the admitted tokens, but for the last call, stay within
  rate x (L + paceMs): what a provider bucket holding one slice allows.
]]
local bucketKey, requestsKey, windowKey, windowTokensKey, windowSumKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local leasesKey, staggerKey, cooldownKey, statsKey, slotsKey, paceKey = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10], KEYS[11]

local id = ARGV[1]
local rpm = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local windowMs = tonumber(ARGV[4])
local marginMs = tonumber(ARGV[5])
local tpm = tonumber(ARGV[6])
local tokens = tonumber(ARGV[7])
local cap = tonumber(ARGV[8])
local leaseMs = tonumber(ARGV[9])
local staggerMs = tonumber(ARGV[10])
local waitedMs = tonumber(ARGV[11])
local heldSlot = tonumber(ARGV[12])
local jitterRatio, jitterCapMs, jitterDraw = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local paceMs = tonumber(ARGV[16])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- A reservation larger than the whole window would wait forever: refuse it outright.
if tpm > 0 and tokens > tpm then
  return { -1, tpm }
end

local bestWait, bestReason = 0, nil
-- Every rule must pass, so the wait is the longest of them; ties keep the first reason.
local function consider(wait, reason)
  if wait > bestWait then
    bestWait, bestReason = wait, reason
  end
end

-- Cooldown set by any worker after a 429.
local cooldownUntil = tonumber(redis.call('GET', cooldownKey)) or 0
if cooldownUntil > now then
  consider(cooldownUntil - now, 'cooldown')
end

-- Request token bucket: starts at burst (not a full minute), refills rpm per window.
local rate = rpm / windowMs
local b = redis.call('HMGET', bucketKey, 'level', 'ts', 'holdUntil')
local level = tonumber(b[1]) or burst
local ts = tonumber(b[2]) or now
local holdUntil = tonumber(b[3]) or 0
if now > ts then
  level = level + (now - ts) * rate
end
if level > burst then
  level = burst
end
if holdUntil > now then
  consider(holdUntil - now, 'requests')
end
if level < 1 then
  consider(math.ceil((1 - level) / rate), 'requests')
end

-- Request log: the bucket alone admits burst + rpm in the first window; the log keeps
-- every sliding window at rpm, which is what providers enforce.
redis.call('ZREMRANGEBYSCORE', requestsKey, '-inf', now)
local maxInLog = math.max(1, math.floor(rpm))
local inLog = redis.call('ZCARD', requestsKey)
if inLog >= maxInLog then
  local idx = inLog - maxInLog
  local entry = redis.call('ZRANGE', requestsKey, idx, idx, 'WITHSCORES')
  consider(tonumber(entry[2]) - now, 'requests')
end

-- Token window: drop expired entries (keeping the running sum exact), then check.
local reserve = 0
if tpm > 0 then
  -- In chunks: unpack() of a very long list would overflow the Lua stack.
  while true do
    local expired = redis.call('ZRANGEBYSCORE', windowKey, '-inf', now, 'LIMIT', 0, 500)
    if #expired == 0 then
      break
    end
    local amounts = redis.call('HMGET', windowTokensKey, unpack(expired))
    local freed = 0
    for i = 1, #amounts do
      freed = freed + (tonumber(amounts[i]) or 0)
    end
    redis.call('ZREM', windowKey, unpack(expired))
    redis.call('HDEL', windowTokensKey, unpack(expired))
    redis.call('DECRBY', windowSumKey, freed)
  end
  if redis.call('ZCARD', windowKey) == 0 then
    redis.call('DEL', windowSumKey, windowTokensKey)
  end
  reserve = tokens
  local sum = tonumber(redis.call('GET', windowSumKey)) or 0
  -- A call without an estimate still needs some room: its usage is charged at settle.
  local room = math.max(reserve, 1)
  if sum + room > tpm then
    -- Wait until enough of the oldest entries have expired to make room.
    local need = sum + room - tpm
    local entries = redis.call('ZRANGE', windowKey, 0, -1, 'WITHSCORES')
    local freed, wait = 0, windowMs
    for i = 1, #entries, 2 do
      freed = freed + (tonumber(redis.call('HGET', windowTokensKey, entries[i])) or 0)
      if freed >= need then
        wait = tonumber(entries[i + 1]) - now
        break
      end
    end
    consider(math.max(1, wait), 'tokens')
  end
end

-- Token pacing (see the header): wait until the schedule is within one slice of now.
local tat, tokenRate = nil, 0
if tpm > 0 and paceMs > 0 then
  tokenRate = tpm / windowMs
  tat = tonumber(redis.call('HGET', paceKey, 'tat')) or now
  if tat > now + paceMs then
    consider(math.max(1, math.ceil(tat - paceMs - now)), 'tokens')
  end
end

-- Concurrency leases: an expired lease belongs to a dead holder; reclaim it here.
if cap > 0 then
  local reclaimed = redis.call('ZREMRANGEBYSCORE', leasesKey, '-inf', now)
  if reclaimed > 0 then
    redis.call('HINCRBY', statsKey, 'leasesReclaimed', reclaimed)
  end
  local active = redis.call('ZCARD', leasesKey)
  if active >= cap then
    -- No release time is known in advance: re-check after a fraction of the typical hold
    -- time, but never later than the expiry that frees a slot if its holder died.
    local idx = active - cap
    local entry = redis.call('ZRANGE', leasesKey, idx, idx, 'WITHSCORES')
    local hold = tonumber(redis.call('HGET', statsKey, 'holdMsEwma')) or 200
    local poll = math.max(10, math.min(1000, math.floor(hold / 4)))
    consider(math.max(1, math.min(poll, tonumber(entry[2]) - now)), 'concurrency')
  end
end

-- Stagger: minimum spacing between launches across the fleet.
if staggerMs > 0 then
  local nextSlot = tonumber(redis.call('GET', staggerKey)) or 0
  if nextSlot > now then
    consider(nextSlot - now, 'stagger')
  end
end

if bestReason then
  redis.call('HINCRBY', statsKey, 'deferrals:' .. bestReason, 1)
  if bestReason == 'concurrency' then
    return { 0, math.ceil(bestWait), bestReason, 0 }
  end
  local spacing = math.max(staggerMs, math.ceil((windowMs + marginMs) / rpm))
  local slot = now + math.ceil(bestWait)
  if heldSlot == 0 or bestWait > spacing then
    local last = tonumber(redis.call('GET', slotsKey)) or 0
    local gap = spacing + math.floor(math.min(spacing * jitterRatio, jitterCapMs) * jitterDraw)
    if last + gap > slot then
      slot = last + gap
    end
    redis.call('SET', slotsKey, slot, 'PX', slot - now + 1000)
  end
  return { 0, slot - now, bestReason, slot }
end

-- Admitted: take everything in this one step.
level = level - 1
local bucketTtl = math.ceil((burst - level) / rate) + 1000
if holdUntil > now then
  bucketTtl = math.max(bucketTtl, holdUntil - now + 1000)
end
-- `last` lets a release of this very call give its bucket token back (see release.lua).
redis.call('HSET', bucketKey, 'level', tostring(level), 'ts', now, 'last', id)
redis.call('PEXPIRE', bucketKey, bucketTtl)

local expiry = now + windowMs + marginMs
redis.call('ZADD', requestsKey, expiry, id)
redis.call('PEXPIRE', requestsKey, windowMs + marginMs + 1000)

if reserve > 0 then
  redis.call('ZADD', windowKey, expiry, id)
  redis.call('HSET', windowTokensKey, id, reserve)
  redis.call('INCRBY', windowSumKey, reserve)
  redis.call('HINCRBY', statsKey, 'tokensReserved', reserve)
end

if tat then
  -- `last` lets a release of this very call take its share back (see release.lua).
  local nextTat = math.max(tat, now) + reserve / tokenRate
  redis.call('HSET', paceKey, 'tat', string.format('%.3f', nextTat), 'last', id)
  redis.call('PEXPIRE', paceKey, math.ceil(nextTat - now) + windowMs + marginMs)
end

local leaseUntil = 0
if cap > 0 then
  leaseUntil = now + leaseMs
  redis.call('ZADD', leasesKey, leaseUntil, id)
end

if staggerMs > 0 then
  redis.call('SET', staggerKey, now + staggerMs, 'PX', staggerMs + 1000)
end

redis.call('HINCRBY', statsKey, 'calls', 1)
redis.call('HINCRBY', statsKey, 'totalWaitMs', math.floor(waitedMs))
return { 1, now, leaseUntil, reserve }
