--[[
  Corrects the shared state from the provider's own x-ratelimit-remaining-* / reset-*
  headers. Only ever tightens: a provider reporting more room than we think we have is
  ignored, so the configured limits stay the ceiling.

  KEYS[1] bucket hash   KEYS[2] window zset   KEYS[3] window-tokens hash
  KEYS[4] window-sum string   KEYS[5] stats hash   KEYS[6] requests zset (the request log)
  ARGV[1] id for a synthetic window entry   ARGV[2] requests/window   ARGV[3] burst
  ARGV[4] window ms   ARGV[5] provider token limit per window, raw (0 = no token rule)
  ARGV[6] remaining requests (-1 unknown)   ARGV[7] reset of requests in ms (-1 unknown)
  ARGV[8] remaining tokens (-1 unknown)     ARGV[9] reset of tokens in ms (-1 unknown)
  ARGV[10] effective token limit per window (tpm x (1 - headroom))

  Returns {bucketLevel (floored, -1 if untouched), holdUntilMs, syntheticTokens}.
]]
local bucketKey, windowKey, windowTokensKey, windowSumKey, statsKey, requestsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local syncId = ARGV[1]
local rpm = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local windowMs = tonumber(ARGV[4])
local tpm = tonumber(ARGV[5])
local remainingRequests = tonumber(ARGV[6])
local resetRequests = tonumber(ARGV[7])
local remainingTokens = tonumber(ARGV[8])
local resetTokens = tonumber(ARGV[9])
local effectiveTpm = tonumber(ARGV[10])

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local levelOut, holdUntil, synthetic = -1, 0, 0

-- Like with like, as for tokens below: the request log counts every request we admitted
-- in the window (a little longer than the provider does), so a provider reporting no
-- more than the room our log leaves tells us nothing new. Running at the limit, every
-- answer says "0 remaining, reset in ~a window"; holding until that reset would idle the
-- fleet for most of each window while the log already spaces the next launch exactly.
-- Only when the provider counts requests we do not (other clients on the key, lost
-- state, a lower real limit) do its numbers correct the bucket and hold it.
local ourRoom = math.max(1, math.floor(rpm)) - redis.call('ZCOUNT', requestsKey, '(' .. now, '+inf')
if remainingRequests >= 0 and remainingRequests < ourRoom then
  local rate = rpm / windowMs
  local b = redis.call('HMGET', bucketKey, 'level', 'ts', 'holdUntil')
  local level = tonumber(b[1]) or burst
  local ts = tonumber(b[2]) or now
  holdUntil = tonumber(b[3]) or 0
  if now > ts then
    level = level + (now - ts) * rate
  end
  if level > burst then
    level = burst
  end
  if remainingRequests < level then
    level = remainingRequests
    redis.call('HINCRBY', statsKey, 'headerCorrections', 1)
  end
  -- Nothing left: the provider refills at its reset, and the bucket must not admit
  -- before then however fast it would refill on its own.
  if remainingRequests < 1 and resetRequests > 0 and now + resetRequests > holdUntil then
    holdUntil = now + resetRequests
  end
  redis.call('HSET', bucketKey, 'level', tostring(level), 'ts', now, 'holdUntil', holdUntil)
  -- The provider's count now decides the level: no earlier admission can be given back.
  redis.call('HDEL', bucketKey, 'last')
  local ttl = math.ceil((burst - level) / rate) + 1000
  if holdUntil > now then
    ttl = math.max(ttl, holdUntil - now + 1000)
  end
  redis.call('PEXPIRE', bucketKey, ttl)
  levelOut = math.floor(level)
end

if tpm > 0 and remainingTokens >= 0 then
  -- Same trim as in acquire.lua, so the sum compared below is current.
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
  local sum = tonumber(redis.call('GET', windowSumKey)) or 0
  -- Compare like with like: the provider's remaining room, less our headroom share, against
  -- what our effective limit still allows. With a configured limit above the provider's
  -- real one, we are held to what the provider has left, not stalled until its reset.
  local ourRemaining = effectiveTpm - sum
  local providerRoom = math.floor(remainingTokens * effectiveTpm / tpm)
  if providerRoom < ourRemaining then
    -- The provider counts more than we do (other clients on the key, estimates, drift):
    -- hold the difference as a synthetic entry until the provider's own reset.
    synthetic = math.ceil(ourRemaining - providerRoom)
    local expiry = now + (resetTokens > 0 and resetTokens or windowMs)
    redis.call('ZADD', windowKey, expiry, syncId)
    redis.call('HSET', windowTokensKey, syncId, synthetic)
    redis.call('INCRBY', windowSumKey, synthetic)
    redis.call('HINCRBY', statsKey, 'headerCorrections', 1)
  end
end

return { levelOut, holdUntil, synthetic }
