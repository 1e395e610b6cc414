--[[
  Stores a computed value and gives the fill lock back in the same step, so waiters
  never see the lock free while the value is still missing.

  KEYS[1] value key    KEYS[2] fill lock key
  ARGV[1] value        ARGV[2] ttl seconds     ARGV[3] holder token

  The lock is released only if this caller still holds it (a slow filler whose lock
  expired must not free a lock another filler took since).
]]
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[3] then
  redis.call('DEL', KEYS[2])
end
return 1
