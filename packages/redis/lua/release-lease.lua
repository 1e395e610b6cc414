--[[
  Gives a fleet-wide lease back on a graceful stop, so another worker takes over at
  once instead of after the lease expires. Never deletes a lease another worker holds.

  KEYS[1] lease key
  ARGV[1] the holder's token
  Returns 1 when released, 0 when the lease was not ours.
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
