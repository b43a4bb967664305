-- tollgate: leases of tokens for leased mode.
-- Runs after prelude.lua (the clock and the helpers every script shares)
-- and deadline.lua (a late lease grants nothing).
--
-- KEYS[i]  the base key of ask i: <prefix>:{<tag>}:<policy>@<algorithm>,
--          each key at most once
-- ARGV[1]  the mode: "2", or the deadline (see deadline.lua)
-- ARGV[2 + 7 (i - 1) ...]  ask i: algorithm, need, want, then four parameters
--   g  GCRA          emission interval T (ns), capacity burst*T (ns), limit, burst
--   f  fixed window  period (ms), limit
--
-- Each ask is answered on its own (leases are not all or nothing: tokens
-- granted for one limit while another refuses stay with the instance for
-- later checks). An ask is granted min(want, available) tokens, charged to
-- the counter now, when at least `need` are available; else nothing is
-- charged. Answers per ask: granted, limit, remaining (after the grant),
-- window_ns (the effective window), retry_after_ns (0 when granted; -1 for "never": need above the
-- capacity).
--
-- Time is Redis's TIME; state and keys are those of check.lua, so checks
-- made per request and leases count against the same counters.

local function gcra(key, need, want, interval, capacity, limit, burst)
  local v = redis.call('GET', key)
  local base = math.max(v and offset(v) or 0, 0)
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  local window = gcra_window(available, capacity - base, interval)
  if need > burst then
    return {0, limit, available, window, NEVER}
  end
  if available < need then
    return {0, limit, available, window, math.max(base + need * interval - capacity, 1)}
  end
  local granted = math.min(want, available)
  local nxt = base + granted * interval
  redis.call('SET', key, stamp(nxt), 'PX', ttl(nxt))
  local left = available - granted
  return {granted, limit, left, gcra_window(left, capacity - nxt, interval), 0}
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
  local at = 2 + 7 * (i - 1)
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
