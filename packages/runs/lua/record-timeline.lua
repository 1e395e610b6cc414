--[[
  Adds counters to the run's timeline in its current bucket (timeline.lua, in front of this).

  KEYS[1] timeline hash
  KEYS[2] run meta hash
  ARGV[1] now in server ms, or '' to read the server's clock (tests give it, to move time)
  ARGV[2 ..] counter name, integer amount, ...

  Returns 1 when recorded, 0 when the run is gone or the key is not a timeline.
]]
local now = tonumber(ARGV[1])
if not now then
  local t = redis.call('TIME')
  now = t[1] * 1000 + math.floor(t[2] / 1000)
end
local counters = {}
for i = 2, #ARGV do
  counters[#counters + 1] = ARGV[i]
end
return brandq_timeline_add(KEYS[1], KEYS[2], now, counters)
