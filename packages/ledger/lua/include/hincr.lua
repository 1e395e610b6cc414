-- Adds an integer `delta` to a hash field. HINCRBY refuses "-0", and a Lua number may print
-- as a float: skip 0 and format as an integer.
local function hincr(key, field, delta)
  if delta ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', delta)) end
end
