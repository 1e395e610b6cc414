--[[
  Ends a step of a batch intent in one go: the intent rewritten (or removed), requests put
  back in the pending hash, outcomes handed back. A request is in the pending hash or in
  exactly one intent, never both (a kill between separate writes would leave it in both,
  and it would be sent twice); and a coordinator that lost its lease and finds the intent
  already resolved by its successor changes nothing.
  KEYS[1] the run's pending requests   KEYS[2] the run's batch intents   KEYS[3] the run's outcomes
  ARGV[1] intent id
  ARGV[2] the intent's new JSON, or '' when it is done (removed)
  ARGV[3] n: how many requests go back to pending
  ARGV[4 .. 3+2n] request id, request JSON pairs
  ARGV[4+2n ..]   request id, outcome JSON pairs (an outcome already stored is kept)
  Returns 1, or 0 when the intent no longer exists (nothing written).
]]
local id = ARGV[1]
if redis.call('HEXISTS', KEYS[2], id) == 0 then return 0 end
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[2], id)
else
  redis.call('HSET', KEYS[2], id, ARGV[2])
end
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  i = i + 2
end
while i < #ARGV do
  redis.call('HSETNX', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
return 1
