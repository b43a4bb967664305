-- tollgate: the deadline of a charging check. Runs after prelude.lua,
-- before the check's own script, which reads the mode from `mode`.
--
-- ARGV[1], the mode, is "0" (look), "1" or "2" (charge; "2" also answers
-- the TIME used), or, for mode "2" with a deadline, the instant on Redis's
-- clock (µs since the epoch, many digits) past which the store has given up
-- on this call. A script that starts later writes nothing and answers
-- {-1, secs, micros} ("late", with the TIME it read): the request was
-- answered without it, so it must not be charged.

local mode = ARGV[1]
if #mode > 1 then
  if now_s * 1000000 + now_us > tonumber(mode) then
    return {-1, now_s, now_us}
  end
  mode = '2'
end
