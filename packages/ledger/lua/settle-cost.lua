--[[
  Settles one paid call: removes its reservation (if it still exists) and books the real
  cost and usage counters. Booking happens even when the reservation already expired, so
  money actually spent is never lost from the ledger.

  KEYS[1] ledger hash
  KEYS[2] reservations sorted set
  KEYS[3] reservation amounts hash
  KEYS[4] settled bookings sorted set (booking id -> server ms)
  ARGV[1] reservation id ('' when the call had none, e.g. a free cache hit)
  ARGV[2] provider ('tavily' | 'llm' | 'sheets')
  ARGV[3] actual cost micro-dollars
  ARGV[4] input tokens
  ARGV[5] output tokens
  ARGV[6] credits
  ARGV[7] booking id: a booking retried after a lost reply (Redis restarted, connection
          dropped) is recognised and not counted twice; ids are kept for an hour.
]]
local ledger, reservations, amounts, settled = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, provider = ARGV[1], ARGV[2]
local cost, input, output, credits = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local booking = ARGV[7]

if redis.call('ZSCORE', settled, booking) then
  return tonumber(redis.call('HGET', ledger, 'spent_micros') or '0')
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', settled, '-inf', now - 3600000)
redis.call('ZADD', settled, now, booking)

if id ~= '' then
  local held = redis.call('HGET', amounts, id)
  if held then
    redis.call('HINCRBY', ledger, 'reserved_micros', -tonumber(held))
    redis.call('HDEL', amounts, id)
    redis.call('ZREM', reservations, id)
  end
end

redis.call('HINCRBY', ledger, 'spent_micros', cost)
redis.call('HINCRBY', ledger, provider .. ':cost_micros', cost)
redis.call('HINCRBY', ledger, provider .. ':calls', 1)
if input > 0 then redis.call('HINCRBY', ledger, provider .. ':input_tokens', input) end
if output > 0 then redis.call('HINCRBY', ledger, provider .. ':output_tokens', output) end
if credits > 0 then redis.call('HINCRBY', ledger, provider .. ':credits', credits) end
return tonumber(redis.call('HGET', ledger, 'spent_micros'))
