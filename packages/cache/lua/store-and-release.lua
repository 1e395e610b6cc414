--[[
  Stores a computed value and gives the fill lock back in the same step, so waiters
  never see the lock free while the value is still missing. Fenced by the holder's token:
  a filler whose lock lapsed never writes over a newer filler's claim.

  KEYS[1] value key    KEYS[2] fill lock key
  ARGV[1] value        ARGV[2] ttl seconds     ARGV[3] holder token

  Returns 1 when stored by the lock's holder (lock released), 2 when stored late by a
  filler whose lock had lapsed with nobody else filling the key, 0 when not stored because
  a newer filler holds the lock or already stored its value (that filler's answer wins).
  The SET is the script's first write, so a Redis refusing it (OOM) changes nothing.
]]
local holder = redis.call('GET', KEYS[2])
if holder == ARGV[3] then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  redis.call('DEL', KEYS[2])
  return 1
end
if holder or redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 2
