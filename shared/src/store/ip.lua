-- Counts one call from a source IP in a fixed hourly window shared by every
-- Lambda instance, and says whether it is within the limit.
-- KEYS: counter; ARGV: limit, window ms, not-after ms
-- Reply: {'allowed', 0, calls so far} | {'limited', ms until the window ends, calls so far}
if late() then
  return {'expired', 0, 0}
end
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
if n > tonumber(ARGV[1]) then
  return {'limited', ttl, n}
end
return {'allowed', 0, n}
