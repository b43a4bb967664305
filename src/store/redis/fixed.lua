-- tollgate: one fixed-window charge, without check.lua's machinery for
-- several charges (same arguments, same answer). Runs after prelude.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     as check.lua with one charge: mode, nonce (unused), then 'f',
--          cost, period (ms), limit
--
-- Answers {allowed, allowed, limit, remaining, reset_ns, retry_after_ns},
-- then in mode "2" the seconds and microseconds of the TIME it used.

local cost = tonumber(ARGV[4])
local period = tonumber(ARGV[5])
local limit = tonumber(ARGV[6])

local index = fdiv(now_ms, period)
local window = KEYS[1] .. ':' .. int(index)
local used = math.min(tonumber(redis.call('GET', window) or '0'), limit)
local reset = ((index + 1) * period - now_ms) * MS - past_ms_ns
local out
if used + cost <= limit then
  if ARGV[1] ~= '0' then
    -- The window's key is new when it holds only this charge: its TTL,
    -- set then, outlives the window.
    if redis.call('INCRBY', window, int(cost)) == cost then
      redis.call('PEXPIRE', window, ttl(reset))
    end
  end
  out = {1, 1, limit, limit - used - cost, reset, 0}
else
  local retry = NEVER
  if cost <= limit then
    retry = math.max(reset, 1)
  end
  out = {0, 0, limit, limit - used, reset, retry}
end
if ARGV[1] == '2' then
  out[7] = now_s
  out[8] = now_us
end
return out
