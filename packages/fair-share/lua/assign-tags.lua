--[[
  Reserves the virtual tags of `count` jobs of one run (start-time fair queueing).
  KEYS[1] the fleet's fair-share state (hash): `v` the queue's virtual time, `finish:<run>`
          each run's last tag.
  ARGV[1] run id
  ARGV[2] count of jobs
  ARGV[3] weight (> 0)
  ARGV[4] the virtual time at the queue's front as the caller read it (-1: nothing queued)
  ARGV[5] '1' when the fleet holds no job at all: every tag is forgotten, time starts at 0
  ARGV[6] 'extend' (after the run's own last tag) or 'restart' (the run's queued jobs are
          being re-tagged: from the queue's virtual time)
  Returns the run's start tag (a string: a float).
]]
local state = KEYS[1]
local run = ARGV[1]
local count = tonumber(ARGV[2])
local weight = tonumber(ARGV[3])
local front = tonumber(ARGV[4])

if ARGV[5] == '1' then redis.call('DEL', state) end

-- Virtual time never goes back: a front read before another producer's newer jobs is stale.
local v = tonumber(redis.call('HGET', state, 'v')) or 0
if front > v then v = front end
redis.call('HSET', state, 'v', string.format('%.17g', v))

local start = v
if ARGV[6] == 'extend' then
  local finish = tonumber(redis.call('HGET', state, 'finish:' .. run)) or 0
  if finish > start then start = finish end
end
redis.call('HSET', state, 'finish:' .. run, string.format('%.17g', start + count / weight))
return string.format('%.17g', start)
