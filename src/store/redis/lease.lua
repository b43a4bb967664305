-- tollgate: leases of tokens for leased mode.
--
-- KEYS[i]  the base key of ask i: <prefix>:{<tag>}:<policy>@<algorithm>,
--          each key at most once
-- ARGV[1 + 7 (i - 1) ...]  ask i: algorithm, need, want, then four parameters
--   g  GCRA          emission interval T (ns), capacity burst*T (ns), limit, burst
--   f  fixed window  period (ms), limit
--
-- Each ask is answered on its own (leases are not all or nothing: tokens
-- granted for one limit while another refuses stay with the instance for
-- later checks). An ask is granted min(want, available) tokens, charged to
-- the counter now, when at least `need` are available; else nothing is
-- charged. Answers per ask: granted, limit, remaining (after the grant),
-- reset_ns, retry_after_ns (0 when granted; -1 for "never": need above the
-- capacity).
--
-- Time is Redis's TIME; state and keys are those of check.lua, so checks
-- made per request and leases count against the same counters.

if redis.replicate_commands then
  pcall(redis.replicate_commands)
end

local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_us = tonumber(clock[2])
local now_n = now_us * 1000
local now_ms = now_s * 1000 + math.floor(now_us / 1000)
local past_ms_ns = (now_us % 1000) * 1000
local NEVER = -1
local MS = 1000000

local function int(x)
  return string.format('%d', x)
end

-- floor(x / d) for integers x >= 0, d > 0, corrected for rounding.
local function fdiv(x, d)
  local q = math.floor(x / d)
  if q * d > x then
    q = q - 1
  elseif (q + 1) * d <= x then
    q = q + 1
  end
  return q
end

local function ttl(ns)
  return int(math.max(math.ceil(ns / MS), 1) + 1)
end

-- The GCRA state as ns from now (see check.lua).
local function offset(v)
  local len = #v
  if len <= 9 then
    return (0 - now_s) * 1e9 + (tonumber(v) - now_n)
  end
  local s = tonumber(string.sub(v, 1, len - 9))
  local n = tonumber(string.sub(v, len - 8))
  return (s - now_s) * 1e9 + (n - now_n)
end

local function stamp(off)
  local ds = math.floor(off / 1e9)
  local dn = off - ds * 1e9
  if dn < 0 then
    ds = ds - 1
    dn = dn + 1e9
  elseif dn >= 1e9 then
    ds = ds + 1
    dn = dn - 1e9
  end
  local s = now_s + ds
  local n = now_n + dn
  if n >= 1e9 then
    s = s + 1
    n = n - 1e9
  end
  return string.format('%d%09d', s, n)
end

local function gcra(key, need, want, interval, capacity, limit, burst)
  local v = redis.call('GET', key)
  local base = math.max(v and offset(v) or 0, 0)
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  if need > burst then
    return {0, limit, available, base, NEVER}
  end
  if available < need then
    return {0, limit, available, base, math.max(base + need * interval - capacity, 1)}
  end
  local granted = math.min(want, available)
  local nxt = base + granted * interval
  redis.call('SET', key, stamp(nxt), 'PX', ttl(nxt))
  return {granted, limit, available - granted, nxt, 0}
end

local function fixed(key, need, want, period, limit)
  local index = fdiv(now_ms, period)
  local window = key .. ':' .. int(index)
  local used = math.min(tonumber(redis.call('GET', window) or '0'), limit)
  local reset = ((index + 1) * period - now_ms) * MS - past_ms_ns
  local available = limit - used
  if need > limit then
    return {0, limit, available, reset, NEVER}
  end
  if available < need then
    return {0, limit, available, reset, math.max(reset, 1)}
  end
  local granted = math.min(want, available)
  redis.call('INCRBY', window, int(granted))
  redis.call('PEXPIRE', window, ttl(reset))
  return {granted, limit, available - granted, reset, 0}
end

local out = {}
for i = 1, #KEYS do
  local at = 1 + 7 * (i - 1)
  local algorithm = ARGV[at]
  local need = tonumber(ARGV[at + 1])
  local want = math.max(tonumber(ARGV[at + 2]), need)
  local a = tonumber(ARGV[at + 3])
  local b = tonumber(ARGV[at + 4])
  local c = tonumber(ARGV[at + 5])
  local d = tonumber(ARGV[at + 6])
  local o
  if algorithm == 'g' then
    o = gcra(KEYS[i], need, want, a, b, c, d)
  elseif algorithm == 'f' then
    o = fixed(KEYS[i], need, want, a, b)
  else
    return redis.error_reply('tollgate: no lease for algorithm ' .. tostring(algorithm))
  end
  for j = 1, 5 do
    out[#out + 1] = o[j]
  end
end
return out
