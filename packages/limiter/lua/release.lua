--[[
  Gives a permit back when its call was never made: refunds the reserved tokens, the
  request-log entry and the bucket token, and frees the lease. The stagger slot is not
  given back: it only spaces launches and the next one is near anyway.

  KEYS[1] bucket hash   KEYS[2] requests zset   KEYS[3] window zset
  KEYS[4] window-tokens hash   KEYS[5] window-sum string   KEYS[6] leases zset
  KEYS[7] stats hash
  ARGV[1] permit id   ARGV[2] burst

  Returns {leaseWasHeld (0|1), refundedTokens}.
]]
local bucketKey, requestsKey, windowKey, windowTokensKey, windowSumKey, leasesKey, statsKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local id = ARGV[1]
local burst = tonumber(ARGV[2])

local refunded = tonumber(redis.call('HGET', windowTokensKey, id)) or 0
if redis.call('ZREM', windowKey, id) == 1 then
  redis.call('HDEL', windowTokensKey, id)
  redis.call('DECRBY', windowSumKey, refunded)
else
  refunded = 0
end

if redis.call('ZREM', requestsKey, id) == 1 then
  -- The stored level is as of `ts`; the refill since then is added on the next acquire.
  local level = tonumber(redis.call('HGET', bucketKey, 'level'))
  if level then
    redis.call('HSET', bucketKey, 'level', tostring(math.min(burst, level + 1)))
  end
end

local held = redis.call('ZREM', leasesKey, id)
redis.call('HINCRBY', statsKey, 'released', 1)
return { held, refunded }
