#!lua
-- The shebang: a full Redis (noeviction) refuses the whole script up front, never halfway
-- or depending on which write comes first; bookings retry until memory is freed.
--[[
  Moves a reservation to unconfirmed spend: the request left but no answer says whether it
  was billed (a timeout, a connection reset). Its worst case stays charged against the
  budget, apart from the confirmed spend, until a late settle books the real cost.
  Repeating it changes nothing (only a live reservation moves).

  KEYS[1] ledger hash
  KEYS[2] reservations sorted set
  KEYS[3] reservation amounts hash
  KEYS[4] reservation providers hash
  KEYS[5] unconfirmed reservations hash
  ARGV[1] reservation id

  Returns 1 when the reservation moved, 0 when it was no longer live.
]]
local ledger, reservations, amounts, providers, unconfirmed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]

-- @include include/hincr.lua

local held = redis.call('HGET', amounts, id)
if not held then return 0 end
held = tonumber(held)
local holder = redis.call('HGET', providers, id)

hincr(ledger, 'reserved_micros', -held)
hincr(ledger, 'unconfirmed_micros', held)
if holder then
  hincr(ledger, holder .. ':unconfirmed_micros', held)
  hincr(ledger, holder .. ':unconfirmed_calls', 1)
end
redis.call('HSET', unconfirmed, id, held)
redis.call('HDEL', amounts, id)
redis.call('ZREM', reservations, id)
return 1
