-- Checks a guess and counts it in one step, so concurrent guesses are all
-- counted and a correct code is accepted exactly once.
-- KEYS: code, fails, lock (all share the phone's hash tag)
-- ARGV: digest, max attempts, lockout ms, failure window ms, not-after ms
-- Reply: {outcome, number}: approved 0 | rejected attempts-left | locked ms
local lock_ms = redis.call('PTTL', KEYS[3])
if lock_ms > 0 then
  return {'locked', lock_ms}
end

-- Digests are HMACs under a key Redis never sees, so comparing them with
-- '==' leaks nothing an attacker could use through timing.
local stored = redis.call('HGET', KEYS[1], 'digest')
if stored and stored == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {'approved', 0}
end

-- Wrong, expired and never-requested all count: each is a guess.
local fails = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local max = tonumber(ARGV[2])
if fails >= max then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  return {'locked', tonumber(ARGV[3])}
end
return {'rejected', max - fails}
