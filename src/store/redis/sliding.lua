-- tollgate: one sliding-window-counter charge, without check.lua's
-- machinery for several charges (the same answers). Runs after
-- prelude.lua, deadline.lua and weights.lua, before answer.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     mode (as check.lua's), cost, period (ms), limit: only what it
--          reads (each argument costs Redis time)
--
-- Answers {allowed, remaining, window_ns, retry_after_ns} (answer.lua,
-- placed after it, adds the TIME it used in mode "2"); the store reads them
-- as check.lua's answer for one charge.

local cost = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])

local index = fdiv(now_ms, period)
local current_key = KEYS[1] .. ':' .. int(index)
local counts = redis.call('MGET', current_key, KEYS[1] .. ':' .. int(index - 1))
local current = tonumber(counts[1] or '0')
local previous = tonumber(counts[2] or '0')
local period_ns = period * MS
local used, elapsed, weight = window_use(current, previous, index, period)
local out
if used + cost <= limit then
  if mode ~= '0' then
    -- The window's key is new when it holds only this charge: its TTL,
    -- set then, lasts to the end of the next window, as long as it counts.
    if redis.call('INCRBY', current_key, int(cost)) == cost then
      redis.call('PEXPIRE', current_key, ttl(weight + period_ns))
    end
  end
  local remaining = limit - used - cost
  out = {1, remaining, window_wait(current + cost + remaining, previous, 1, limit, elapsed, weight, period_ns), 0}
else
  local window, retry = window_refusal(current, previous, used, cost, limit, elapsed, weight, period_ns)
  out = {0, math.max(limit - used, 0), window, retry}
end
