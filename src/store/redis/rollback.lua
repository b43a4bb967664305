-- tollgate: undoes what one check (or one part of a check, on Redis
-- Cluster) charged in check.lua's mode "2": when a later part, in another
-- slot, refused; or as a refund after the response (refund_when).
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
--   f, s  the count of the window the time falls in goes down by the cost
--      (nothing when that window's key is gone). An earlier time may name
--      an earlier window than the charge's: for f a past window no check
--      reads again; for s the previous window, weighing less than the
--      charge's own: less room than the charge took, never more.
--   l, c  the charge's own member leaves the sorted set
--   -     nothing (a concurrency charge a refund keeps in place: its
--         permit gives the room back)
-- Answers how many charges were undone.

if redis.replicate_commands then
  pcall(redis.replicate_commands)
end

local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_us = tonumber(clock[2])
local now_n = now_us * 1000
local then_s = tonumber(ARGV[1])
local then_us = tonumber(ARGV[2])
local then_ms = then_s * 1000 + math.floor(then_us / 1000)
local elapsed = ((now_s - then_s) * 1000000 + (now_us - then_us)) * 1000
local nonce = ARGV[3]
local MS = 1000000

local function int(x)
  return string.format('%d', x)
end

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

-- The GCRA state as ns from now, and back (see check.lua).
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

local undone = 0
for i = 1, #KEYS do
  local at = 4 + 6 * (i - 1)
  local algorithm = ARGV[at]
  local cost = tonumber(ARGV[at + 1])
  local a = tonumber(ARGV[at + 2])
  local key = KEYS[i]
  if algorithm == 'g' then
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
