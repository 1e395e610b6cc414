--[[
  Settles a permit after its call was sent (answered or failed): brings its token-window
  entry to what the provider counts and gives back its lease.

  Token counting. 'admission' (OpenAI): the provider counted the call when it arrived, at
  the prompt estimate plus the output cap, whatever the answer used and even if it failed;
  the entry keeps its reservation and is only raised when the reported usage is larger.
  'usage': the entry is corrected to the usage, refunding or charging the difference.

  Pacing follows the same correction: a charge moves the schedule (tat) later; a refund
  moves it earlier only for the latest paced admission, as release.lua explains.

  KEYS[1] window zset   KEYS[2] window-tokens hash   KEYS[3] window-sum string
  KEYS[4] leases zset   KEYS[5] stats hash   KEYS[6] pace hash
  ARGV[1] permit id
  ARGV[2] used tokens, or -1 when unknown (the reservation then stands: safe side)
  ARGV[3] how long the permit was held in ms, or -1 (feeds the concurrency re-check hint)
  ARGV[4] effective token limit per window (0 = no token rule)
  ARGV[5] window ms   ARGV[6] margin ms
  ARGV[7] token counting: 'admission' or 'usage'
  ARGV[8] pace slice ms (0 = no token pacing)

  Returns {leaseWasHeld (0|1), tokenDelta}. leaseWasHeld = 0 means the lease had already
  expired and was reclaimed: the holder outlived its lease without renewing.
]]
local windowKey, windowTokensKey, windowSumKey, leasesKey, statsKey, paceKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id = ARGV[1]
local used = tonumber(ARGV[2])
local holdMs = tonumber(ARGV[3])
local tpm = tonumber(ARGV[4])
local windowMs = tonumber(ARGV[5])
local marginMs = tonumber(ARGV[6])
local countsUsage = ARGV[7] == 'usage'
local paceMs = tonumber(ARGV[8])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local delta = 0
if tpm > 0 and used >= 0 then
  local reserved = tonumber(redis.call('HGET', windowTokensKey, id))
  if reserved then
    if countsUsage or used > reserved then
      delta = used - reserved
      redis.call('HSET', windowTokensKey, id, used)
      redis.call('INCRBY', windowSumKey, delta)
    end
  elseif used > 0 then
    -- Nothing reserved (or the entry already expired): the usage still counts from now.
    redis.call('ZADD', windowKey, now + windowMs + marginMs, id)
    redis.call('HSET', windowTokensKey, id, used)
    redis.call('INCRBY', windowSumKey, used)
    delta = used
  end
  redis.call('HINCRBY', statsKey, 'tokensUsed', used)

  if paceMs > 0 and delta ~= 0 then
    local rate = tpm / windowMs
    local p = redis.call('HMGET', paceKey, 'tat', 'last')
    local tat = tonumber(p[1]) or now
    local nextTat = nil
    if delta > 0 then
      nextTat = math.max(tat, now) + delta / rate
    elseif p[2] == id then
      nextTat = tat + delta / rate
    end
    if nextTat then
      redis.call('HSET', paceKey, 'tat', string.format('%.3f', nextTat))
      redis.call('PEXPIRE', paceKey, math.max(1, math.ceil(nextTat - now)) + windowMs + marginMs)
    end
  end
end

local held = redis.call('ZREM', leasesKey, id)
if holdMs >= 0 then
  local old = tonumber(redis.call('HGET', statsKey, 'holdMsEwma'))
  local ewma = old and (old * 0.8 + holdMs * 0.2) or holdMs
  redis.call('HSET', statsKey, 'holdMsEwma', math.floor(ewma))
end
redis.call('HINCRBY', statsKey, 'settled', 1)
return { held, delta }
