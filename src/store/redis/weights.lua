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
