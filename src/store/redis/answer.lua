-- tollgate: the end of every lean one-charge script (gcra.lua, fixed.lua,
-- sliding.lua), which leaves its figures in `out`: {allowed, remaining,
-- window_ns, retry_after_ns}, then in mode "2" the TIME it used.

if mode == '2' then
  out[5] = now_s
  out[6] = now_us
end
return out
