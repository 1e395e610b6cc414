--[[
  Extends the fill lock of a cache entry while its holder is still computing, only if the
  holder still owns it: a lapsed lock is never re-taken here (a waiter may have claimed the
  key and be paying for it; the holder's later store is fenced by its token instead).

  KEYS[1] lock key
  ARGV[1] holder token
  ARGV[2] new length in ms
  Returns 1 when renewed, 0 when the lock is gone, -1 when another filler holds it.
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if holder then
  return -1
end
return 0
