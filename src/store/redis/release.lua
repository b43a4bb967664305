-- tollgate: gives back one concurrency slot.
--
-- KEYS[1]  the concurrency sorted set; KEYS[2] the sum of its live costs
-- ARGV[1]  the slot's member; ARGV[2] its cost
--
-- Answers 1 when the slot was still held, 0 when it had already ended
-- (released before, or reclaimed after its expiry).
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then
  return 0
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[2])
elseif redis.call('EXISTS', KEYS[2]) == 1 then
  if redis.call('DECRBY', KEYS[2], ARGV[2]) < 0 then
    -- Out of step with the set: drop it, the next check counts again.
    redis.call('DEL', KEYS[2])
  end
end
return 1
