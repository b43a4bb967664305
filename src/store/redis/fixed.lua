-- tollgate: one fixed-window charge, without check.lua's machinery for
-- several charges (the same answers). Runs after prelude.lua and
-- deadline.lua, before answer.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     mode (as check.lua's), cost, period (ms), limit: only what it
--          reads (each argument costs Redis time)
--
-- Answers {allowed, remaining, reset_ns, retry_after_ns} (answer.lua,
-- placed after it, adds the TIME it used in mode "2"); the store reads them
-- as check.lua's answer for one charge.

local cost = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])

local index = fdiv(now_ms, period)
local window = KEYS[1] .. ':' .. int(index)
local used = math.min(tonumber(redis.call('GET', window) or '0'), limit)
local reset = ((index + 1) * period - now_ms) * MS - past_ms_ns
local out
if used + cost <= limit then
  if mode ~= '0' then
    -- The window's key is new when it holds only this charge: its TTL,
    -- set then, outlives the window.
    if redis.call('INCRBY', window, int(cost)) == cost then
      redis.call('PEXPIRE', window, ttl(reset))
    end
  end
  out = {1, limit - used - cost, reset, 0}
else
  local retry = NEVER
  if cost <= limit then
    retry = math.max(reset, 1)
  end
  out = {0, limit - used, reset, retry}
end
