--[[
  Deletes a run's sheet-write stream if it is empty, atomically with the length check, so
  an entry added by a concurrent enqueue is never deleted with it.

  KEYS[1] the run's sheet-writes stream
  Returns the stream's length (0 when it was empty and is now gone).
]]
local len = redis.call('XLEN', KEYS[1])
if len == 0 then
  redis.call('DEL', KEYS[1])
end
return len
