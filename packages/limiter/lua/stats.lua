--[[
  Reads a provider's statistics and live state in one consistent snapshot, without
  changing anything: expired entries are skipped, not removed.

  KEYS[1] requests zset   KEYS[2] window zset   KEYS[3] window-tokens hash
  KEYS[4] leases zset     KEYS[5] stagger string   KEYS[6] cooldown string
  KEYS[7] stats hash      KEYS[8] bucket hash

  Returns a flat list of field, value pairs: the stats hash, then the live figures.
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = redis.call('HGETALL', KEYS[7])

local live = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, '+inf')
local tokens = 0
for i = 1, #live do
  tokens = tokens + (tonumber(redis.call('HGET', KEYS[3], live[i])) or 0)
end

local function push(name, value)
  out[#out + 1] = name
  out[#out + 1] = tostring(value)
end
push('nowMs', now)
push('tokensInWindow', tokens)
push('requestsInWindow', redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'))
push('activeLeases', redis.call('ZCOUNT', KEYS[4], '(' .. now, '+inf'))
push('nextSlotAtMs', tonumber(redis.call('GET', KEYS[5])) or 0)
push('cooldownUntilMs', tonumber(redis.call('GET', KEYS[6])) or 0)
push('holdUntilMs', tonumber(redis.call('HGET', KEYS[8], 'holdUntil')) or 0)
return out
