--[[
  Settles a permit after the call: corrects its token-window entry to the usage the
  provider reported (refunding or charging the difference) and gives back its lease.

  KEYS[1] window zset   KEYS[2] window-tokens hash   KEYS[3] window-sum string
  KEYS[4] leases zset   KEYS[5] stats hash
  ARGV[1] permit id
  ARGV[2] used tokens, or -1 when unknown (the reservation then stands: safe side)
  ARGV[3] how long the permit was held in ms, or -1 (feeds the concurrency re-check hint)
  ARGV[4] 1 if the provider has a token rule
  ARGV[5] window ms   ARGV[6] margin ms

  Returns {leaseWasHeld (0|1), tokenDelta}. leaseWasHeld = 0 means the lease had already
  expired and was reclaimed: the holder outlived its lease without renewing.
]]
local windowKey, windowTokensKey, windowSumKey, leasesKey, statsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]
local used = tonumber(ARGV[2])
local holdMs = tonumber(ARGV[3])
local tokenRule = ARGV[4] == '1'
local windowMs = tonumber(ARGV[5])
local marginMs = tonumber(ARGV[6])

local delta = 0
if tokenRule and used >= 0 then
  local reserved = tonumber(redis.call('HGET', windowTokensKey, id))
  if reserved then
    delta = used - reserved
    redis.call('HSET', windowTokensKey, id, used)
    redis.call('INCRBY', windowSumKey, delta)
  elseif used > 0 then
    -- Nothing reserved (or the entry already expired): the usage still counts from now.
    local t = redis.call('TIME')
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
    redis.call('ZADD', windowKey, now + windowMs + marginMs, id)
    redis.call('HSET', windowTokensKey, id, used)
    redis.call('INCRBY', windowSumKey, used)
    delta = used
  end
  redis.call('HINCRBY', statsKey, 'tokensUsed', used)
end

local held = redis.call('ZREM', leasesKey, id)
if holdMs >= 0 then
  local old = tonumber(redis.call('HGET', statsKey, 'holdMsEwma'))
  local ewma = old and (old * 0.8 + holdMs * 0.2) or holdMs
  redis.call('HSET', statsKey, 'holdMsEwma', math.floor(ewma))
end
redis.call('HINCRBY', statsKey, 'settled', 1)
return { held, delta }
