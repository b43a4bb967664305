-- tollgate: undoes what one check (or one part of a check, on Redis
-- Cluster) charged in check.lua's mode "2": when a later part, in another
-- slot, refused; or as a refund after the response (refund_when).
-- Runs after prelude.lua (the clock and the helpers every script shares).
--
-- KEYS[i]  the base key of charge i, as check.lua was given them
-- ARGV[1], ARGV[2]  the seconds and microseconds of the TIME check.lua used,
--          or any time no later than that (a refund of a check spread over
--          several slots gives the earliest TIME its parts answered); never
--          a later one
-- ARGV[3]  the nonce check.lua was given
-- ARGV[4 + 6 (i - 1) ...]  charge i as check.lua was given it: algorithm,
--   cost, then four parameters
--
-- Never gives back more than the charge took, so no undo can admit what
-- the check's absence would have refused:
--   g  the TAT goes back by cost * T less the time since the charge (time
--      may already have absorbed that much of it); not at all past that.
--      An earlier time gives back less.
--   q  as g (a queued GCRA: the same state)
--   f, s  the count of the window the time falls in goes down by the cost
--      (nothing when that window's key is gone). An earlier time may name
--      an earlier window than the charge's: for f a past window no check
--      reads again; for s the previous window, weighing less than the
--      charge's own: less room than the charge took, never more.
--   l, c  the charge's own member leaves the sorted set
--   -     nothing (a concurrency charge a refund keeps in place: its
--         permit gives the room back)
-- Answers how many charges were undone.

local then_s = tonumber(ARGV[1])
local then_us = tonumber(ARGV[2])
local then_ms = then_s * 1000 + math.floor(then_us / 1000)
local elapsed = ((now_s - then_s) * 1000000 + (now_us - then_us)) * 1000
local nonce = ARGV[3]

local undone = 0
for i = 1, #KEYS do
  local at = 4 + 6 * (i - 1)
  local algorithm = ARGV[at]
  local cost = tonumber(ARGV[at + 1])
  local a = tonumber(ARGV[at + 2])
  local key = KEYS[i]
  if algorithm == 'g' or algorithm == 'q' then
    local give = cost * a - elapsed
    local v = redis.call('GET', key)
    if give > 0 and v then
      local off = offset(v) - give
      if off > 0 then
        redis.call('SET', key, stamp(off), 'PX', ttl(off))
      else
        redis.call('DEL', key)
      end
      undone = undone + 1
    end
  elseif algorithm == 'f' or algorithm == 's' then
    local window = key .. ':' .. int(fdiv(then_ms, a))
    if redis.call('EXISTS', window) == 1 then
      if redis.call('DECRBY', window, int(cost)) <= 0 then
        redis.call('DEL', window)
      end
      undone = undone + 1
    end
  elseif algorithm == 'l' or algorithm == 'c' then
    local member = int(cost) .. ':' .. nonce .. ':' .. int(i)
    if redis.call('ZREM', key, member) == 1 then
      local sum = key .. ':n'
      if redis.call('ZCARD', key) == 0 then
        redis.call('DEL', sum)
      elseif redis.call('EXISTS', sum) == 1 then
        if redis.call('DECRBY', sum, int(cost)) < 0 then
          redis.call('DEL', sum)
        end
      end
      undone = undone + 1
    end
  end
end
return undone
