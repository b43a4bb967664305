-- tollgate: one GCRA charge, the common check, without check.lua's
-- machinery for several charges (the same answers).
-- Runs after prelude.lua and deadline.lua, before answer.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     mode (as check.lua's), cost, emission interval T (ns), capacity
--          burst*T (ns), burst: only what it reads (each argument costs
--          Redis time)
--
-- Answers {allowed, remaining, window_ns, retry_after_ns} (answer.lua,
-- placed after it, adds the TIME it used in mode "2"); the store reads them
-- as check.lua's answer for one charge (it knows the limit).

local key = KEYS[1]
local cost = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local capacity = tonumber(ARGV[4])
local burst = tonumber(ARGV[5])

local v = redis.call('GET', key)
local base = v and offset(v) or 0
if base < 0 then
  base = 0
end
local nxt = base + cost * interval
local out
if cost <= burst and nxt <= capacity then
  if mode ~= '0' then
    redis.call('SET', key, stamp(nxt), 'PX', ttl(nxt))
  end
  local remaining = fdiv(capacity - nxt, interval)
  out = {1, remaining, gcra_window(remaining, capacity - nxt, interval), 0}
else
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  local retry = NEVER
  if cost <= burst then
    retry = math.max(nxt - capacity, 1)
  end
  out = {0, available, gcra_window(available, capacity - base, interval), retry}
end
