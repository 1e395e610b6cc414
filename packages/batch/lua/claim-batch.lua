--[[
  Moves parked requests of one run step into a new batch intent, in one step: a request is
  in the pending hash or in exactly one intent, never both and never neither.
  KEYS[1] the run's pending requests (hash: request id -> request JSON)
  KEYS[2] the run's batch intents (hash: intent id -> intent JSON)
  ARGV[1] intent id
  ARGV[2] the intent's JSON object without its closing brace; its requests are appended
          here as found, verbatim (decoding and re-encoding them would turn the empty
          arrays of their JSON schemas into objects)
  ARGV[3..] request ids to claim
  Returns the number of requests claimed (0: none was still pending; no intent written).
]]
local claimed = {}
for i = 3, #ARGV do
  local request = redis.call('HGET', KEYS[1], ARGV[i])
  if request then
    claimed[#claimed + 1] = request
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
if #claimed == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ',"requests":[' .. table.concat(claimed, ',') .. ']}')
return #claimed
