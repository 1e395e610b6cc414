--[[
  Releases the fill lock of a cache entry only if this caller still holds it, so a slow
  filler whose lock expired never frees a lock another filler took since.

  KEYS[1] lock key
  ARGV[1] holder token
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
