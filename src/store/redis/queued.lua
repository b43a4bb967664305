-- tollgate: one GCRA charge with a queue (delay mode), the common check of
-- a limit that delays instead of refusing, without check.lua's machinery
-- for several charges (the same answers).
-- Runs after prelude.lua and deadline.lua, before answer.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@gcra (a GCRA's state)
-- ARGV     mode (as check.lua's), cost, emission interval T (ns), burst,
--          max_delay (ns): the longest a request may wait for its turn
--
-- Answers {allowed, remaining, window_ns, retry_after_ns} (answer.lua,
-- placed after it, adds the TIME it used in mode "2"). An admission that
-- waits answers allowed with retry_after the wait, measured from Redis's
-- TIME: every instance reads one clock, so waiters of several instances
-- are ordered on one timeline and pass at one combined rate.

local key = KEYS[1]
local cost = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local max_delay = tonumber(ARGV[5])
local capacity = burst * interval

local v = redis.call('GET', key)
local base = v and offset(v) or 0
if base < 0 then
  base = 0
end
local nxt = base + cost * interval
local out
if cost <= burst and nxt <= capacity + max_delay then
  -- The place is taken now, whether the request passes now or later.
  if mode ~= '0' then
    redis.call('SET', key, stamp(nxt), 'PX', ttl(nxt))
  end
  if nxt <= capacity then
    local remaining = fdiv(capacity - nxt, interval)
    out = {1, remaining, gcra_window(remaining, capacity - nxt, interval), 0}
  else
    -- Nothing is left then; the next unit comes an interval later.
    out = {1, 0, interval, nxt - capacity}
  end
else
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  local retry = NEVER
  if cost <= burst then
    retry = math.max(nxt - capacity - max_delay, 1)
  end
  out = {0, available, gcra_window(available, capacity - base, interval), retry}
end
