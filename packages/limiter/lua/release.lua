--[[
  Gives a permit back when its call was never made: refunds the reserved tokens and the
  request-log entry (exact: the call leaves the logs as if never admitted) and frees the
  lease. The stagger slot is not given back: it only spaces launches and the next one is
  near anyway.

  The bucket token and the pacing share (tat) are given back only while this permit is
  still the latest admission: then the state is exactly what it was before it (plus later
  charges), and undoing it is exact. Once another call came after it, its share cannot be
  taken out without the history: the bucket may have been full meanwhile (refill lost at
  the cap) and the schedule may have caught up with now, so giving the share back would
  let the provider see more than a slice (the model test found this for the bucket). The
  cost is at most one call's worth of pacing delay.

  KEYS[1] bucket hash   KEYS[2] requests zset   KEYS[3] window zset
  KEYS[4] window-tokens hash   KEYS[5] window-sum string   KEYS[6] leases zset
  KEYS[7] stats hash   KEYS[8] pace hash
  ARGV[1] permit id   ARGV[2] burst
  ARGV[3] effective token limit per window (0 = no token rule)   ARGV[4] window ms
  ARGV[5] pace slice ms (0 = no token pacing)

  Returns {leaseWasHeld (0|1), refundedTokens}.
]]
local bucketKey, requestsKey, windowKey, windowTokensKey, windowSumKey, leasesKey, statsKey, paceKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local id = ARGV[1]
local burst = tonumber(ARGV[2])
local tpm = tonumber(ARGV[3])
local windowMs = tonumber(ARGV[4])
local paceMs = tonumber(ARGV[5])

local refunded = tonumber(redis.call('HGET', windowTokensKey, id)) or 0
if redis.call('ZREM', windowKey, id) == 1 then
  redis.call('HDEL', windowTokensKey, id)
  redis.call('DECRBY', windowSumKey, refunded)
else
  refunded = 0
end

if refunded > 0 and tpm > 0 and paceMs > 0 then
  local p = redis.call('HMGET', paceKey, 'tat', 'last')
  if p[2] == id then
    local tat = tonumber(p[1])
    redis.call('HSET', paceKey, 'tat', string.format('%.3f', tat - refunded / (tpm / windowMs)))
    redis.call('HDEL', paceKey, 'last')
  end
end

if redis.call('ZREM', requestsKey, id) == 1 then
  -- The stored level is as of `ts`, this admission: the refill since then is added on the next acquire.
  local b = redis.call('HMGET', bucketKey, 'level', 'last')
  local level = tonumber(b[1])
  if level and b[2] == id then
    redis.call('HSET', bucketKey, 'level', tostring(math.min(burst, level + 1)))
    redis.call('HDEL', bucketKey, 'last')
  end
end

local held = redis.call('ZREM', leasesKey, id)
redis.call('HINCRBY', statsKey, 'released', 1)
return { held, refunded }
