-- tollgate: what every script of the Redis store starts with (placed
-- before each script's own text when the store loads it): Redis's clock,
-- read once, and the helpers that turn its figures into keys and TTLs.
--
-- Time is Redis's TIME (whole microseconds). Lua numbers are doubles, exact
-- for integers below 2^53; figures in nanoseconds are offsets from now.
--
-- Writing after TIME needs effects replication, the default since Redis 5
-- (and in every Valkey); the scripts no longer ask for it with
-- `redis.replicate_commands()`, which cost about a microsecond of Redis CPU
-- per check.

local clock = redis.call('TIME')
local now_s = tonumber(clock[1])
local now_us = tonumber(clock[2])
local now_n = now_us * 1000                   -- ns into the current second
local now_ms = now_s * 1000 + math.floor(now_us / 1000)
local past_ms_ns = (now_us % 1000) * 1000     -- ns past now_ms
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

-- A key's time to live, in ms, for state that is idle `ns` from now.
local function ttl(ns)
  return int(math.max(math.ceil(ns / MS), 1) + 1)
end

-- GCRA state: the theoretical arrival time as decimal nanoseconds since the
-- epoch. `offset` reads it as ns from now; `stamp` writes now + off.
local function offset(v)
  local len = #v
  if len <= 9 then
    return (0 - now_s) * 1e9 + (tonumber(v) - now_n)
  end
  local s = tonumber(string.sub(v, 1, len - 9))
  local n = tonumber(string.sub(v, len - 8))
  return (s - now_s) * 1e9 + (n - now_n)
end

-- GCRA's effective window (ns): with `room` ns of capacity left and
-- `available` whole units in it, the wait, once they are spent, for the
-- next unit.
local function gcra_window(available, room, interval)
  return (available + 1) * interval - room
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

