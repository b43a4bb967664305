-- tollgate: the deadline of a charging check. Runs after prelude.lua,
-- before the check's own script, which reads the mode from `mode`.
--
-- ARGV[1], the mode, may carry the instant on Redis's clock (µs since the
-- epoch) past which the store has given up on this call: "<mode>:<µs>". A
-- script that starts later writes nothing and answers {-1, secs, micros}
-- ("late", with the TIME it read): the request was answered without it, so
-- it must not be charged.

local mode = ARGV[1]
local colon = string.find(mode, ':', 1, true)
if colon then
  if now_s * 1000000 + now_us > tonumber(string.sub(mode, colon + 1)) then
    return {-1, now_s, now_us}
  end
  mode = string.sub(mode, 1, colon - 1)
end
