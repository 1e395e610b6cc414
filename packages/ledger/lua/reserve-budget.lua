#!lua
-- The shebang: a full Redis (noeviction) refuses the whole script up front, never halfway
-- or depending on which write comes first; bookings retry until memory is freed.
--[[
  Reserves the worst-case cost of one paid call against a run's budget, atomically, so
  that spent + unconfirmed + reserved never exceeds the budget however many workers call
  at once (a settled cost above its reservation is the one exception, booked as overrun).

  The worst case is raised by the largest cost/reserved ratio this provider was observed
  to bill in this run (`<provider>:price_ratio_ppm`): a configured price below the real one
  is corrected for every later call; a request of 0 holds the largest bill seen for one
  (`<provider>:zero_price_bill_micros`). Reservations whose holder died expire into unconfirmed
  spend, not back into the budget: the holder may have been killed after the provider
  answered and billed.

  KEYS[1] ledger hash (budget_micros, budget_epoch, spent_micros, unconfirmed_micros, reserved_micros, ...)
  KEYS[2] reservations sorted set (id -> expiry ms, server clock)
  KEYS[3] reservation amounts hash (id -> micros)
  KEYS[4] reservation providers hash (id -> provider)
  KEYS[5] unconfirmed reservations hash (id -> micros)
  ARGV[1] reservation id: one that is already held (or expired into unconfirmed spend) is
          answered as reserved again, with its amount and nothing added (a holder that died
          after reserving and reserves again)
  ARGV[2] provider ('tavily' | 'llm' | 'sheets')
  ARGV[3] requested amount in micro-dollars (non-negative integer)
  ARGV[4] ttl ms

  Returns {outcome, held, available, in_flight, epoch}: outcome 1 reserved (held = the raised
  amount), 0 refused with nothing in flight (the run is out of budget), 2 refused while
  reservations are in flight (they may settle below their worst case or be released).
  A budget of 0 (unset) means unlimited; `available` is then -1.
]]
local ledger, reservations, amounts, providers, unconfirmed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id, provider, requested, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
if not requested or requested < 0 or requested ~= math.floor(requested) then
  return redis.error_reply('ERR reservation amount must be a non-negative integer, got ' .. tostring(ARGV[3]))
end

-- @include include/hincr.lua
local function field(name) return tonumber(redis.call('HGET', ledger, name) or '0') end

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)

for _, rid in ipairs(redis.call('ZRANGEBYSCORE', reservations, '-inf', now)) do
  local held = tonumber(redis.call('HGET', amounts, rid) or '0')
  local holder = redis.call('HGET', providers, rid)
  hincr(ledger, 'reserved_micros', -held)
  hincr(ledger, 'unconfirmed_micros', held)
  if holder then
    hincr(ledger, holder .. ':unconfirmed_micros', held)
    hincr(ledger, holder .. ':unconfirmed_calls', 1)
  end
  hincr(ledger, 'expired_reservations', 1)
  redis.call('HSET', unconfirmed, rid, held)
  redis.call('HDEL', amounts, rid)
  redis.call('ZREM', reservations, rid)
end

local already = redis.call('HGET', amounts, id) or redis.call('HGET', unconfirmed, id)
if already then return { 1, tonumber(already), -1, 0, field('budget_epoch') } end

local ratio = field(provider .. ':price_ratio_ppm')
local amount = requested
if requested == 0 then
  -- No ratio raises 0: a call priced 0 that the provider bills holds the largest such bill
  -- seen, else every later call would hold 0 and the run stop only past its budget.
  amount = field(provider .. ':zero_price_bill_micros')
elseif ratio > 1000000 then
  amount = math.ceil(requested * ratio / 1000000)
end

local budget, epoch = field('budget_micros'), field('budget_epoch')
local committed = field('spent_micros') + field('unconfirmed_micros')
local reserved = field('reserved_micros')

if budget > 0 and committed + reserved + amount > budget then
  -- Calls in flight can only add to what is committed: when that alone leaves no room, no
  -- settle or release can make some, and waiting for them would only delay the verdict.
  local outcome = 0
  if reserved > 0 and committed + amount <= budget then outcome = 2 end
  return { outcome, amount, budget - committed - reserved, reserved, epoch }
end

redis.call('ZADD', reservations, now + ttl, id)
redis.call('HSET', amounts, id, amount)
redis.call('HSET', providers, id, provider)
hincr(ledger, 'reserved_micros', amount)
local available = -1
if budget > 0 then available = budget - committed - reserved - amount end
return { 1, amount, available, reserved + amount, epoch }
