--[[
  One round trip for the common cases of a cache lookup: the value if it is there, else
  the right to compute it (the fill lock), else "someone else is computing it".

  KEYS[1] value key    KEYS[2] fill lock key
  ARGV[1] holder token ARGV[2] lock ms

  Returns {1, value} (hit), {2} (this caller holds the fill lock and computes), or {0}
  (another filler holds it: wait for its value). Checking the value and taking the lock in
  one step means a filler that finished in between is never paid for twice.
]]
local value = redis.call('GET', KEYS[1])
if value then
  return { 1, value }
end
if redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then
  return { 2 }
end
return { 0 }
