#!lua
-- The shebang: a full Redis (noeviction) refuses the whole script up front, never halfway
-- or depending on which write comes first; bookings retry until memory is freed.
--[[
  Gives a reservation back without booking anything: the call was never sent, or the
  provider refused it unbilled. A reservation that already expired into unconfirmed spend
  leaves it the same way (its holder was slow, not dead, and knows the call was not billed).

  KEYS[1] ledger hash
  KEYS[2] reservations sorted set
  KEYS[3] reservation amounts hash
  KEYS[4] reservation providers hash
  KEYS[5] unconfirmed reservations hash
  ARGV[1] reservation id

  Returns 1 when something was held, 0 otherwise (already settled or released).
]]
local ledger, reservations, amounts, providers, unconfirmed = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local id = ARGV[1]

-- @include include/hincr.lua

local held = redis.call('HGET', amounts, id)
if held then
  hincr(ledger, 'reserved_micros', -tonumber(held))
  redis.call('HDEL', amounts, id)
  redis.call('ZREM', reservations, id)
  redis.call('HDEL', providers, id)
  return 1
end

held = redis.call('HGET', unconfirmed, id)
if not held then return 0 end
local holder = redis.call('HGET', providers, id)
hincr(ledger, 'unconfirmed_micros', -tonumber(held))
if holder then
  hincr(ledger, holder .. ':unconfirmed_micros', -tonumber(held))
  hincr(ledger, holder .. ':unconfirmed_calls', -1)
end
redis.call('HDEL', unconfirmed, id)
redis.call('HDEL', providers, id)
return 1
