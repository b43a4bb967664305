-- tollgate: one admission check over several limits, all or nothing.
-- Runs after prelude.lua (the clock and the helpers every script shares),
-- deadline.lua (the mode) and weights.lua (the sliding window's weighting).
--
-- KEYS[i]  the base key of charge i: <prefix>:{<tag>}:<policy>@<algorithm>
-- ARGV[1]  the mode (read by deadline.lua, placed before, with the deadline
--          it may carry): "1" to charge, "0" to look only (no write at
--          all), "2" to charge
--          and append Redis's clock to the answer (for a later rollback)
-- ARGV[2]  a nonce unique to this check (names sorted-set members); on a
--          cluster, a part of a check that a queued limit in another part
--          delays carries it as "<nonce>/<wait in ns>": the request passes
--          that long from now, each GCRA charged for then
-- ARGV[3 + 6 (i - 1) ...]  charge i: algorithm, cost, then four parameters
--   g  GCRA            emission interval T (ns), capacity burst*T (ns), limit, burst
--   q  GCRA, queued    emission interval T (ns), limit, burst, max_delay (ns)
--   f  fixed window    period (ms), limit
--   s  sliding window  period (ms), limit
--   l  sliding log     period (ms), limit
--   c  concurrency     limit, slot TTL (ms), retry hint (ns)
--
-- Answers {all_allowed, then per charge: allowed, limit, remaining, window_ns,
-- retry_after_ns} with retry_after -1 for "never" (cost above capacity);
-- in mode "2", then the seconds and microseconds of the TIME it used. An
-- allowed charge's retry_after is the wait before the request passes (0
-- unless a queued GCRA delays it; then every allowed charge answers the
-- check's wait).
--
-- Delay: when a queued GCRA asks a wait D (the longest asked), the check
-- runs again with every GCRA looked at and charged for now + D, the instant
-- the request passes (each counts it then), and passes only if every limit
-- admits it then without a further wait; windows and concurrency count it
-- now (the layer never combines them with a queue). The memory store
-- follows the same rule.
--
-- Phase one computes every outcome from the stored state without writing
-- (a later charge on the same counter sees the earlier ones of this check);
-- phase two runs the writes only when every charge is allowed. The only
-- write made by a refused check is dropping expired sorted-set entries,
-- which changes no answer.
--
-- Time is Redis's TIME (whole microseconds). Lua numbers are doubles, exact
-- for integers below 2^53: absolute times are kept in microseconds since the
-- epoch (below 2^53 until the year 2255) or, for GCRA, as a decimal string
-- of nanoseconds read in two parts; every figure in nanoseconds is an offset
-- from now, exact while it stays below 2^53 ns (about 104 days).

local charge = mode == '1' or mode == '2'
local nonce = ARGV[2]
local now_abs_us = now_s * 1000000 + now_us   -- µs since the epoch
local floor_ns = 0
local cut = string.find(nonce, '/', 1, true)
if cut then
  floor_ns = math.max(tonumber(string.sub(nonce, cut + 1)) or 0, 0)
  nonce = string.sub(nonce, 1, cut - 1)
end

-- Makes `key` live at least `ms` more (never shortens it).
local function keep(key, ms)
  local left = redis.call('PTTL', key)
  if left < ms then
    redis.call('PEXPIRE', key, int(ms))
  end
end

local tats = {}     -- GCRA key -> TAT offset charged earlier in this check
local pending = {}  -- counter key -> cost charged earlier in this check
local writes = {}   -- phase two

local function later(f)
  writes[#writes + 1] = f
end

local function add_pending(key, cost)
  pending[key] = (pending[key] or 0) + cost
end

-- A GCRA charge for a request passing `shift` ns from now (0, or the
-- check's wait), queueing up to `max_delay` ns beyond the capacity.
local function gcra(key, cost, interval, capacity, limit, burst, max_delay, shift)
  local off = tats[key]
  if off == nil then
    local v = redis.call('GET', key)
    off = (v and offset(v) or 0) - shift
  end
  local base = math.max(off, 0)
  local available = 0
  if capacity > base then
    available = fdiv(capacity - base, interval)
  end
  local window = gcra_window(available, capacity - base, interval)
  if cost > burst then
    return {0, limit, available, window, NEVER}
  end
  local nxt = base + cost * interval
  if nxt <= capacity + max_delay then
    tats[key] = nxt
    later(function()
      redis.call('SET', key, stamp(nxt + shift), 'PX', ttl(nxt + shift))
    end)
    if nxt <= capacity then
      local remaining = fdiv(capacity - nxt, interval)
      return {1, limit, remaining, gcra_window(remaining, capacity - nxt, interval), 0}
    end
    return {1, limit, 0, interval, nxt - capacity}
  end
  return {0, limit, available, window, math.max(nxt - capacity - max_delay, 1)}
end

local function fixed(key, cost, period, limit)
  local index = fdiv(now_ms, period)
  local window = key .. ':' .. int(index)
  local used = tonumber(redis.call('GET', window) or '0') + (pending[window] or 0)
  used = math.min(used, limit)
  -- The effective window: the window's end, where the whole count comes back.
  local reset = ((index + 1) * period - now_ms) * MS - past_ms_ns
  if cost > limit then
    return {0, limit, limit - used, reset, NEVER}
  end
  if used + cost <= limit then
    add_pending(window, cost)
    later(function()
      redis.call('INCRBY', window, int(cost))
      redis.call('PEXPIRE', window, ttl(reset))
    end)
    return {1, limit, limit - used - cost, reset, 0}
  end
  return {0, limit, limit - used, reset, math.max(reset, 1)}
end

local function sliding(key, cost, period, limit)
  local index = fdiv(now_ms, period)
  local current_key = key .. ':' .. int(index)
  local current = tonumber(redis.call('GET', current_key) or '0') + (pending[current_key] or 0)
  local previous = tonumber(redis.call('GET', key .. ':' .. int(index - 1)) or '0')
  local period_ns = period * MS
  local used, elapsed, weight = window_use(current, previous, index, period)
  if used + cost <= limit then
    add_pending(current_key, cost)
    later(function()
      redis.call('INCRBY', current_key, int(cost))
      redis.call('PEXPIRE', current_key, ttl(weight + period_ns))
    end)
    local remaining = limit - used - cost
    local window = window_wait(current + cost + remaining, previous, 1, limit, elapsed, weight, period_ns)
    return {1, limit, remaining, window, 0}
  end
  local window, retry = window_refusal(current, previous, used, cost, limit, elapsed, weight, period_ns)
  return {0, limit, math.max(limit - used, 0), window, retry}
end

-- Sorted-set counters (sliding log, concurrency): members "<cost>:<nonce>:<i>",
-- and the sum of live costs in <key>:n.
local function cost_of(member)
  return tonumber(string.match(member, '^(%d+):')) or 1
end

-- The cost of the live entries (score above `cutoff`). When charging, drops
-- the entries at or below it.
local function live(key, cutoff)
  local sum_key = key .. ':n'
  local count = redis.call('ZCARD', key)
  if count == 0 then
    if charge then
      redis.call('DEL', sum_key)
    end
    return 0
  end
  local gone = redis.call('ZRANGEBYSCORE', key, '-inf', int(cutoff))
  local freed = 0
  for _, member in ipairs(gone) do
    freed = freed + cost_of(member)
  end
  local stored = redis.call('GET', sum_key)
  local sum
  if stored then
    sum = tonumber(stored)
  else
    -- The sum was lost (evicted): count it again from the set.
    sum = 0
    for _, member in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      sum = sum + cost_of(member)
    end
  end
  local used = math.max(sum - freed, 0)
  if charge and (#gone > 0 or not stored) then
    if #gone > 0 then
      redis.call('ZREMRANGEBYSCORE', key, '-inf', int(cutoff))
    end
    if #gone == count then
      redis.call('DEL', key, sum_key)
    else
      redis.call('SET', sum_key, int(used))
      local left = redis.call('PTTL', key)
      if left > 0 then
        redis.call('PEXPIRE', sum_key, int(left))
      end
    end
  end
  return used
end

local function log(key, i, cost, period, limit)
  local period_us = period * 1000
  local period_ns = period * MS
  local cutoff = now_abs_us - period_us
  local used = live(key, cutoff) + (pending[key] or 0)
  -- The effective window: nothing is freed before the oldest live entry
  -- leaves the window (a charge earlier in this check, not yet written, is
  -- newer than any); an empty log filled now frees its first unit a period
  -- from now.
  local window = period_ns
  local oldest = redis.call('ZRANGEBYSCORE', key, '(' .. int(cutoff), '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if oldest[2] then
    window = math.max((tonumber(oldest[2]) - now_abs_us) * 1000 + period_ns, 1)
  end
  local remaining = math.max(limit - used, 0)
  if cost > limit then
    return {0, limit, remaining, window, NEVER}
  end
  if used + cost <= limit then
    add_pending(key, cost)
    local member = int(cost) .. ':' .. nonce .. ':' .. int(i)
    later(function()
      redis.call('ZADD', key, int(now_abs_us), member)
      redis.call('INCRBY', key .. ':n', int(cost))
      keep(key, period + 1)
      keep(key .. ':n', period + 1)
    end)
    return {1, limit, remaining - cost, window, 0}
  end
  -- The request fits once enough of the oldest entries have expired: walk
  -- them in pages, oldest first (at most `limit` entries in all).
  local freed = 0
  local from = 0
  while true do
    local page = redis.call('ZRANGEBYSCORE', key, '(' .. int(cutoff), '+inf', 'WITHSCORES', 'LIMIT', from, 256)
    if #page == 0 then
      break
    end
    for j = 1, #page, 2 do
      freed = freed + cost_of(page[j])
      if used - freed + cost <= limit then
        local retry = (tonumber(page[j + 1]) - now_abs_us) * 1000 + period_ns
        return {0, limit, remaining, window, math.max(retry, 1)}
      end
    end
    from = from + 256
  end
  return {0, limit, remaining, window, NEVER}
end

local function concurrency(key, i, cost, limit, slot_ttl, hint)
  local used = live(key, now_abs_us) + (pending[key] or 0)
  local remaining = math.max(limit - used, 0)
  if cost <= remaining then
    add_pending(key, cost)
    local member = int(cost) .. ':' .. nonce .. ':' .. int(i)
    later(function()
      redis.call('ZADD', key, int(now_abs_us + slot_ttl * 1000), member)
      redis.call('INCRBY', key .. ':n', int(cost))
      keep(key, slot_ttl + 1)
      keep(key .. ':n', slot_ttl + 1)
    end)
    return {1, limit, remaining - cost, 0, 0}
  end
  if cost > limit then
    return {0, limit, remaining, 0, NEVER}
  end
  return {0, limit, remaining, hint, hint}
end

-- One pass over the charges, every GCRA charged for now + `shift`: the
-- answer, whether all are allowed, and the longest wait asked.
local function run(shift)
  tats = {}
  pending = {}
  writes = {}
  local answer = {1}
  local every = true
  local wait = 0
  for i = 1, #KEYS do
    local at = 3 + 6 * (i - 1)
    local algorithm = ARGV[at]
    local cost = tonumber(ARGV[at + 1])
    local a = tonumber(ARGV[at + 2])
    local b = tonumber(ARGV[at + 3])
    local c = tonumber(ARGV[at + 4])
    local d = tonumber(ARGV[at + 5])
    local key = KEYS[i]
    local o
    if algorithm == 'g' or algorithm == 'q' then
      if algorithm == 'g' then
        o = gcra(key, cost, a, b, c, d, 0, shift)
      else
        o = gcra(key, cost, a, c * a, b, c, d, shift)
      end
      if shift > 0 then
        -- Answered from now: the request passes at now + shift or not at
        -- all, so a further wait there is a refusal.
        if o[1] == 1 and o[5] > 0 then
          o = {0, o[2], o[3], o[4], o[5] + shift}
        elseif o[1] == 0 and o[5] ~= NEVER then
          o[5] = o[5] + shift
        end
      end
    elseif algorithm == 'f' then
      o = fixed(key, cost, a, b)
    elseif algorithm == 's' then
      o = sliding(key, cost, a, b)
    elseif algorithm == 'l' then
      o = log(key, i, cost, a, b)
    elseif algorithm == 'c' then
      o = concurrency(key, i, cost, a, b, c)
    else
      return nil, algorithm
    end
    if o[1] == 0 then
      every = false
    elseif o[5] > wait then
      wait = o[5]
    end
    for j = 1, 5 do
      answer[#answer + 1] = o[j]
    end
  end
  return answer, every, wait
end

local out, all, wait = run(floor_ns)
if out == nil then
  return redis.error_reply('tollgate: unknown algorithm ' .. tostring(all))
end
if floor_ns > 0 then
  -- Passing at the floor: each allowed charge answers that wait.
  wait = floor_ns
  for i = 1, #KEYS do
    local at = 1 + 5 * (i - 1)
    if out[at + 1] == 1 then
      out[at + 5] = wait
    end
  end
elseif wait > 0 then
  -- A queued GCRA makes the request wait: it passes then only if every
  -- limit admits it at that instant without a further wait, each GCRA
  -- charged for it; each allowed charge answers that wait.
  out, all = run(wait)
  for i = 1, #KEYS do
    local at = 1 + 5 * (i - 1)
    if out[at + 1] == 1 then
      out[at + 5] = wait
    end
  end
end

if all and charge then
  for _, write in ipairs(writes) do
    write()
  end
end
out[1] = all and 1 or 0
if mode == '2' then
  out[#out + 1] = now_s
  out[#out + 1] = now_us
end
return out
