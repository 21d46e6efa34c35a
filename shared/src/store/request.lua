-- Decides and records a send in one step, so concurrent requests for one
-- phone can never both pass the cooldown or the hourly quota.
-- KEYS: code, lock, sends, fails, daily failures, line type (all share the
--       phone's hash tag)
-- ARGV: digest, send id, code ttl ms, cooldown ms, max sends, window ms,
--       sealed code ('' for none), its expiry epoch ms, max failures a day,
--       line type to cache ('' for none), its ttl ms, not-after ms
-- Reply: {outcome, milliseconds to wait (0 when stored)}

-- A resend of this very call (after a dropped connection) finds its own
-- send already recorded: the same answer, nothing counted twice.
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then
  return {'stored', 0}
end
if late() then
  return {'expired', 0}
end

-- A line type just looked up is kept whatever this send becomes, so the
-- next request for the number does not pay for another lookup.
if ARGV[10] ~= '' then
  redis.call('SET', KEYS[6], ARGV[10], 'PX', ARGV[11])
end

-- A phone that took its day's worth of wrong guesses gets no new code
-- until the oldest of them is a day old: a code it could not use would
-- only cost an SMS.
local day = 86400000
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - day)
if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[9]) then
  local oldest = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
  return {'locked', math.max(1, tonumber(oldest[2]) + day - now)}
end

local window = tonumber(ARGV[6])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - window)

local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
-- A delivery receipt that said the latest SMS never arrived lifts its
-- cooldown, so the person can ask again (by voice, say) at once.
if last[2] and redis.call('HGET', KEYS[1], 'lifted') ~= last[1] then
  local wait = tonumber(last[2]) + tonumber(ARGV[4]) - now
  if wait > 0 then
    return {'cooldown', wait}
  end
end

if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[5]) then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {'quota', math.max(1, tonumber(first[2]) + window - now)}
end

redis.call('ZADD', KEYS[3], now, ARGV[2])
redis.call('PEXPIRE', KEYS[3], window)
-- Replacing the hash drops the previous code: one valid code per phone.
-- A new code ends a lock (the lock ended the old code) and gets its own
-- OTP_MAX_ATTEMPTS; the daily failures above still bound every guess.
redis.call('DEL', KEYS[1], KEYS[2], KEYS[4])
redis.call('HSET', KEYS[1], 'digest', ARGV[1], 'id', ARGV[2])
if ARGV[7] ~= '' then
  redis.call('HSET', KEYS[1], 'sealed', ARGV[7], 'exp', ARGV[8])
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {'stored', 0}
