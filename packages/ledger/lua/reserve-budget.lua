--[[
  Reserves the worst-case cost of one paid call against a run's budget, atomically, so
  that the sum of settled costs and live reservations never exceeds the budget however
  many workers call at once. Reservations of crashed workers expire.

  KEYS[1] ledger hash (spent_micros, budget_micros, ...)
  KEYS[2] reservations sorted set (id -> expiry ms, server clock)
  KEYS[3] reservation amounts hash (id -> micros)
  ARGV[1] reservation id
  ARGV[2] amount in micro-dollars (integer)
  ARGV[3] ttl ms

  Returns {1, remaining_after} when reserved, {0, available} when the budget cannot cover it.
  A budget of 0 (unset) means unlimited.
]]
local ledger, reservations, amounts = KEYS[1], KEYS[2], KEYS[3]
local id, amount, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)

-- Drop expired reservations first: their holders died without settling.
local expired = redis.call('ZRANGEBYSCORE', reservations, '-inf', now)
for _, rid in ipairs(expired) do
  local held = tonumber(redis.call('HGET', amounts, rid) or '0')
  redis.call('HINCRBY', ledger, 'reserved_micros', -held)
  redis.call('HINCRBY', ledger, 'expired_reservations', 1)
  redis.call('HDEL', amounts, rid)
  redis.call('ZREM', reservations, rid)
end

local budget = tonumber(redis.call('HGET', ledger, 'budget_micros') or '0')
local spent = tonumber(redis.call('HGET', ledger, 'spent_micros') or '0')
local reserved = tonumber(redis.call('HGET', ledger, 'reserved_micros') or '0')

if budget > 0 and spent + reserved + amount > budget then
  return { 0, budget - spent - reserved }
end

redis.call('ZADD', reservations, now + ttl, id)
redis.call('HSET', amounts, id, amount)
redis.call('HINCRBY', ledger, 'reserved_micros', amount)
if budget > 0 then
  return { 1, budget - spent - reserved - amount }
end
return { 1, -1 }
