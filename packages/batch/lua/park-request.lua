--[[
  Parks a batch request once over its whole life: a job that looks again while its request
  is pending, claimed into a batch or in flight at the provider parks nothing new (parking
  it again would send it, and pay for it, again). Only the coordinator puts a request back
  (a failed line, for a later batch), and only consuming a failed outcome forgets it.
  KEYS[1] the run's known requests (hash: request id -> 1)
  KEYS[2] the run's pending requests (hash: request id -> request JSON)
  ARGV[1] request id   ARGV[2] request JSON
  Returns 1 when parked now, 0 when it was known already.
]]
if redis.call('HSETNX', KEYS[1], ARGV[1], 1) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
