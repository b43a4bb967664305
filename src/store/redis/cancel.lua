-- tollgate: gives back the places of waiters that left before their turn
-- (delay mode). Runs after prelude.lua (the clock and the helpers).
--
-- KEYS[i]  a queued GCRA's key
-- ARGV[2i - 1], ARGV[2i]  the arrival time (decimal ns since the epoch) the
--          waiter's admission set, and the one to put back (that less its
--          cost * T), both computed by the store from the check's TIME and
--          wait
--
-- Only a place no later request reserved after is given back: the key must
-- still hold exactly the arrival time the admission set (a later admission
-- moved it further, and its waiters' instants are fixed). Answers how many
-- places came back.

local given = 0
for i = 1, #KEYS do
  local key = KEYS[i]
  local expected = ARGV[2 * i - 1]
  local replacement = ARGV[2 * i]
  if redis.call('GET', key) == expected then
    local off = offset(replacement)
    if off > 0 then
      redis.call('SET', key, replacement, 'PX', ttl(off))
    else
      redis.call('DEL', key)
    end
    given = given + 1
  end
end
return given
