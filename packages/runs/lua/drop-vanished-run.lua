--[[
  Deletes what is left of a run whose meta hash is gone (expired by its retention, or
  deleted): keys written after its expiry was set (a late booking re-creating a ledger
  key) would otherwise stay forever, with nothing left to find them by. Checked and done in
  one step, so a run re-created under the same id in between is never touched.

  KEYS[1]    run meta hash
  KEYS[2 ..] every key of the run (runKeyList)
  Returns the number of keys deleted, or -1 when the run exists.
]]
if redis.call('HGET', KEYS[1], 'id') then
  return -1
end
local deleted = 0
for i = 2, #KEYS do
  deleted = deleted + redis.call('DEL', KEYS[i])
end
return deleted
