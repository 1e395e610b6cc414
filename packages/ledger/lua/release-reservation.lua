--[[
  Gives a reservation back without booking anything (the call was never sent).

  KEYS[1] ledger hash
  KEYS[2] reservations sorted set
  KEYS[3] reservation amounts hash
  ARGV[1] reservation id
]]
local held = redis.call('HGET', KEYS[3], ARGV[1])
if not held then return 0 end
redis.call('HINCRBY', KEYS[1], 'reserved_micros', -tonumber(held))
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
