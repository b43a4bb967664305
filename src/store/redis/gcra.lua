-- tollgate: one GCRA charge, the common check, without check.lua's
-- machinery for several charges (same arguments, same answer).
-- Runs after prelude.lua.
--
-- KEYS[1]  the base key: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV     as check.lua with one charge: mode, nonce (unused), then 'g',
--          cost, emission interval T (ns), capacity burst*T (ns), limit,
--          burst
--
-- Answers {allowed, allowed, limit, remaining, reset_ns, retry_after_ns},
-- then in mode "2" the seconds and microseconds of the TIME it used.

local key = KEYS[1]
local cost = tonumber(ARGV[4])
local interval = tonumber(ARGV[5])
local capacity = tonumber(ARGV[6])
local limit = tonumber(ARGV[7])

local v = redis.call('GET', key)
local base = v and offset(v) or 0
if base < 0 then
  base = 0
end
local nxt = base + cost * interval
local out
if cost <= tonumber(ARGV[8]) and nxt <= capacity then
  if ARGV[1] ~= '0' then
    redis.call('SET', key, stamp(nxt), 'PX', ttl(nxt))
  end
  out = {1, 1, limit, fdiv(capacity - nxt, interval), nxt, 0}
else
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  local retry = NEVER
  if cost <= tonumber(ARGV[8]) then
    retry = math.max(nxt - capacity, 1)
  end
  out = {0, 0, limit, available, base, retry}
end
if ARGV[1] == '2' then
  out[7] = now_s
  out[8] = now_us
end
return out
