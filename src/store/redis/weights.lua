-- tollgate: the sliding window counter's weighting, shared by check.lua and
-- sliding.lua (placed after prelude.lua, before the script's own text).

local EXACT = 9007199254740992 -- 2^53: doubles hold every integer below it

-- floor(a * b / c) for integers a, b >= 0 and 0 < c < 2^52, exact while the
-- result is below 2^53. A product below 2^53 is exact as a double and
-- divided at once; a larger one is never formed: long multiplication over
-- the bits of b with the remainder kept below c.
local function muldiv(a, b, c)
  local product = a * b
  if product < EXACT then
    return fdiv(product, c)
  end
  local qa = fdiv(a, c)
  local ra = a - qa * c
  local bits = {}
  while b > 0 do
    local bit = b % 2
    bits[#bits + 1] = bit
    b = (b - bit) / 2
  end
  local q, r = 0, 0
  for i = #bits, 1, -1 do
    q = q * 2
    r = r * 2
    if r >= c then
      r = r - c
      q = q + 1
    end
    if bits[i] == 1 then
      q = q + qa
      r = r + ra
      if r >= c then
        r = r - c
        q = q + 1
      end
    end
  end
  return q
end

-- The smallest offset into a window at which ceil(count (P - e) / P) <= room.
local function offset_for(count, room, period_ns)
  if count <= room then
    return 0
  end
  return period_ns - muldiv(room, period_ns, count)
end

-- The sliding window counter in window `index` of `period` ms holding
-- `current` units, after a window of `previous`: the units in use now
-- (the previous window weighted by the share of it still inside the last
-- period, rounded up), the ns elapsed in this window and the ns left of it.
local function window_use(current, previous, index, period)
  local period_us = period * 1000
  local elapsed_us = (now_s * 1000000 + now_us) - index * period_us
  local elapsed = elapsed_us * 1000
  -- ceil(previous * weight / P) = previous - floor(previous * elapsed / P)
  local used = previous - muldiv(previous, elapsed_us, period_us) + current
  return used, elapsed, period * MS - elapsed
end

-- Nanoseconds, from `elapsed` into the window, until `cost` units (at
-- most the limit) fit beside `current` and the fading `previous`. The
-- effective window of an answer is this wait for one unit with the
-- remaining units added to `current` (spent now: they fade in the next
-- window, a request's units do not).
local function window_wait(current, previous, cost, limit, elapsed, weight, period_ns)
  if current + cost <= limit then
    -- Wait, within this window, for the previous window's weight to fade.
    return math.max(offset_for(previous, limit - current - cost, period_ns) - elapsed, 1)
  end
  -- Only the next window helps: the current count becomes the previous one.
  return weight + offset_for(current, math.max(limit - cost, 0), period_ns)
end

-- A refused charge's effective window and retry-after (ns) in that window,
-- `used` units counting now; NEVER for a cost above the limit.
local function window_refusal(current, previous, used, cost, limit, elapsed, weight, period_ns)
  local window = window_wait(current + math.max(limit - used, 0), previous, 1, limit, elapsed, weight, period_ns)
  if cost > limit then
    return window, NEVER
  end
  return window, window_wait(current, previous, cost, limit, elapsed, weight, period_ns)
end
