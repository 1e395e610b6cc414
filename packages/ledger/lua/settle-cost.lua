#!lua
-- The shebang: a full Redis (noeviction) refuses the whole script up front, never halfway
-- or depending on which write comes first; bookings retry until memory is freed.
--[[
  Settles one paid call: takes its hold off the books (a live reservation, or the
  unconfirmed spend it became when it expired or its outcome was unknown) and books the
  real cost and usage counters. Booking happens even when nothing is held any more, so
  money actually spent is never lost from the ledger.

  A cost above what was held is booked in full; the excess is the overrun
  (`overrun_micros`, `<provider>:overrun_micros`), and the cost/requested ratio, if larger
  than any seen before, raises this provider's later reservations (`<provider>:price_ratio_ppm`);
  a cost billed against a request of 0, if larger than any before, is what later requests of 0
  hold (`<provider>:zero_price_bill_micros`).

  Every check that can fail comes before the first write: a settle refused halfway would
  leave the booking id recorded and its retry skipped as a duplicate.

  KEYS[1] ledger hash
  KEYS[2] reservations sorted set
  KEYS[3] reservation amounts hash
  KEYS[4] reservation providers hash
  KEYS[5] unconfirmed reservations hash
  KEYS[6] settled bookings sorted set (booking id -> server ms)
  ARGV[1] reservation id ('' when the call had none)
  ARGV[2] provider ('tavily' | 'llm' | 'sheets')
  ARGV[3] actual cost micro-dollars
  ARGV[4] input tokens
  ARGV[5] output tokens
  ARGV[6] credits
  ARGV[7] booking id: a booking retried after a lost reply (Redis restarted, connection
          dropped) is recognised and not counted twice; ids are kept for an hour.
  ARGV[8] micro-dollars the reservation asked for before any raise (the configured worst case)
  ARGV[9] recipe step id ('' for none): the cost and usage are also counted under
          `step:<id>:*`, so the cost summary splits a run's bill per step exactly as booked

  Returns {booked, overrun, first_overrun, ratio_ppm}: booked 0 for a duplicate; ratio_ppm
  is cost/requested in parts per million, -1 when a cost was billed against a request of 0,
  0 when nothing was held.
]]
local ledger, reservations, amounts, providers, unconfirmed, settled = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local id, provider, booking, step = ARGV[1], ARGV[2], ARGV[7], ARGV[9] or ''
local cost, input, output, credits, requested = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[8])
-- A numeric loop, not ipairs: ipairs stops at the first nil (an argument that is not a number).
local numbers, positions = { cost, input, output, credits, requested }, { 3, 4, 5, 6, 8 }
for i = 1, 5 do
  local value = numbers[i]
  if not value or value < 0 or value ~= math.floor(value) then
    return redis.error_reply('ERR settle argument ' .. positions[i] .. ' must be a non-negative integer')
  end
end

-- @include include/hincr.lua

if redis.call('ZSCORE', settled, booking) then return { 0, 0, 0, 0 } end

local held, unconfirmedHeld, holder = nil, nil, nil
if id ~= '' then
  held = redis.call('HGET', amounts, id)
  if held then
    held = tonumber(held)
  else
    unconfirmedHeld = redis.call('HGET', unconfirmed, id)
    if unconfirmedHeld then
      held = tonumber(unconfirmedHeld)
      holder = redis.call('HGET', providers, id)
    end
  end
end

local overrun, ratio = 0, 0
local firstOverrun = 0
if held then
  if cost > held then overrun = cost - held end
  if requested > 0 then
    ratio = math.ceil(cost * 1000000 / requested)
  elseif cost > 0 then
    ratio = -1
  end
  if overrun > 0 and tonumber(redis.call('HGET', ledger, provider .. ':overrun_micros') or '0') == 0 then firstOverrun = 1 end
end
local knownRatio = tonumber(redis.call('HGET', ledger, provider .. ':price_ratio_ppm') or '0')
local zeroPriceBill = 0
if held and requested == 0 and cost > tonumber(redis.call('HGET', ledger, provider .. ':zero_price_bill_micros') or '0') then zeroPriceBill = cost end

local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', settled, '-inf', now - 3600000)
redis.call('ZADD', settled, now, booking)

if unconfirmedHeld then
  hincr(ledger, 'unconfirmed_micros', -held)
  if holder then
    hincr(ledger, holder .. ':unconfirmed_micros', -held)
    hincr(ledger, holder .. ':unconfirmed_calls', -1)
  end
  redis.call('HDEL', unconfirmed, id)
elseif held then
  hincr(ledger, 'reserved_micros', -held)
  redis.call('HDEL', amounts, id)
  redis.call('ZREM', reservations, id)
end
if id ~= '' then redis.call('HDEL', providers, id) end

hincr(ledger, 'spent_micros', cost)
hincr(ledger, provider .. ':cost_micros', cost)
hincr(ledger, provider .. ':calls', 1)
hincr(ledger, provider .. ':input_tokens', input)
hincr(ledger, provider .. ':output_tokens', output)
hincr(ledger, provider .. ':credits', credits)
if step ~= '' then
  hincr(ledger, 'step:' .. step .. ':cost_micros', cost)
  hincr(ledger, 'step:' .. step .. ':calls', 1)
  hincr(ledger, 'step:' .. step .. ':input_tokens', input)
  hincr(ledger, 'step:' .. step .. ':output_tokens', output)
  hincr(ledger, 'step:' .. step .. ':credits', credits)
end
hincr(ledger, 'overrun_micros', overrun)
hincr(ledger, provider .. ':overrun_micros', overrun)
if ratio > 1000000 and ratio > knownRatio then redis.call('HSET', ledger, provider .. ':price_ratio_ppm', ratio) end
if zeroPriceBill > 0 then redis.call('HSET', ledger, provider .. ':zero_price_bill_micros', zeroPriceBill) end
return { 1, overrun, firstOverrun, ratio }
