--[[
  Takes or renews a fleet-wide lease (the one sheet flusher, the one batch coordinator). A holder renews its own lease (compare, then
  PEXPIRE) and never extends or overwrites a lease another worker holds, so at most one
  process holds it at a time; a dead holder's lease expires and the next claim takes it.

  KEYS[1] lease key
  ARGV[1] the claimant's token (`<pid>:<uuid>`)
  ARGV[2] lease length in ms
  Returns 1 when renewed, 2 when newly taken, 0 when another worker holds it.
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0
