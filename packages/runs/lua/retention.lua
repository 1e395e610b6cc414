--[[
  Retention of a run's keys. Not a script of its own: run-scripts.ts puts it in front of
  each script that can end or resume a run, so the status change and the expiry happen in
  one atomic step.

  KEYS[first .. #KEYS] are all the keys of the run (runKeyList, one hash tag). A run that
  has just ended (completed, cancelled) expires `retention_ms` later, all its keys
  together; a run that is not ended (running again after a resume or an extend, or held:
  paused, budget_exhausted) is kept, its keys lose any expiry. retention_ms 0 keeps an
  ended run forever. A run that was already ended keeps the expiry it has.
]]
local function brandq_retain_run(first, status, ended_now, retention_ms)
  local ended = status == 'completed' or status == 'cancelled'
  if ended and not ended_now then
    return
  end
  for i = first, #KEYS do
    if ended and retention_ms > 0 then
      redis.call('PEXPIRE', KEYS[i], retention_ms)
    else
      redis.call('PERSIST', KEYS[i])
    end
  end
end

