--[[
  Removes a source's "latest run" pointer, but only while it still names the given run:
  a run indexed meanwhile for the same source keeps its pointer.

  KEYS[1] hash source key -> latest run id
  ARGV[1] source key
  ARGV[2] run id
  Returns 1 when the pointer was removed.
]]
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0
