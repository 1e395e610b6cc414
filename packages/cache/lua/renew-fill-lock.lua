--[[
  Extends the fill lock of a cache entry while its holder is still computing, only if the
  holder still owns it.

  KEYS[1] lock key
  ARGV[1] holder token
  ARGV[2] new length in ms
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
