-- tollgate: one sliding-window-counter charge, without check.lua's
-- machinery for several charges (same arguments, same answer). Runs after
-- prelude.lua and weights.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     mode (as check.lua's), cost, period (ms), limit: only what it
--          reads (each argument costs Redis time)
--
-- Answers {allowed, remaining, reset_ns, retry_after_ns}, then in mode "2"
-- the seconds and microseconds of the TIME it used; the store reads them
-- as check.lua's answer for one charge.

local cost = tonumber(ARGV[2])
local period = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])

local index = fdiv(now_ms, period)
local current_key = KEYS[1] .. ':' .. int(index)
local counts = redis.call('MGET', current_key, KEYS[1] .. ':' .. int(index - 1))
local current = tonumber(counts[1] or '0')
local previous = tonumber(counts[2] or '0')
local period_us = period * 1000
local period_ns = period * MS
local elapsed_us = (now_s * 1000000 + now_us) - index * period_us
local elapsed = elapsed_us * 1000
local weight = period_ns - elapsed
-- ceil(previous * weight / P) = previous - floor(previous * elapsed / P)
local used = previous - muldiv(previous, elapsed_us, period_us) + current
local out
if used + cost <= limit then
  if ARGV[1] ~= '0' then
    -- The window's key is new when it holds only this charge: its TTL,
    -- set then, lasts to the end of the next window, as long as it counts.
    if redis.call('INCRBY', current_key, int(cost)) == cost then
      redis.call('PEXPIRE', current_key, ttl(weight + period_ns))
    end
  end
  out = {1, limit - used - cost, weight + period_ns, 0}
else
  local reset = 0
  if current > 0 then
    reset = weight + period_ns
  elseif previous > 0 then
    reset = weight
  end
  local retry = NEVER
  if cost <= limit then
    if current + cost <= limit then
      -- Wait, within this window, for the previous window's weight to fade.
      retry = math.max(offset_for(previous, limit - current - cost, period_ns) - elapsed, 0)
    else
      -- Only the next window helps: the current count becomes the previous one.
      retry = weight + offset_for(current, limit - cost, period_ns)
    end
    retry = math.max(retry, 1)
  end
  out = {0, math.max(limit - used, 0), reset, retry}
end
if ARGV[1] == '2' then
  out[5] = now_s
  out[6] = now_us
end
return out
