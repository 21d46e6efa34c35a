-- Checks a guess and counts it in one step, so concurrent guesses are all
-- counted and a correct code is accepted exactly once.
-- KEYS: code, fails, lock, last (all share the phone's hash tag)
-- ARGV: candidate digests (space separated), max attempts, lockout ms, failure window ms, guess id, not-after ms
-- Reply: {outcome, number}: approved 0 | rejected attempts-left | locked ms

-- A client that resends this very call (after a dropped connection) gets
-- the first run's answer: a right code is not then counted as a wrong one.
local last = redis.call('HMGET', KEYS[4], 'id', 'outcome', 'n')
if last[1] == ARGV[5] then
  return {last[2], tonumber(last[3])}
end
local function decide(outcome, n)
  redis.call('HSET', KEYS[4], 'id', ARGV[5], 'outcome', outcome, 'n', n)
  redis.call('PEXPIRE', KEYS[4], 60000)
  return {outcome, n}
end

local lock_ms = redis.call('PTTL', KEYS[3])
if lock_ms > 0 then
  return {'locked', lock_ms}
end

-- Digests are HMACs under a key Redis never sees, so comparing them with
-- '==' leaks nothing an attacker could use through timing.
local stored = redis.call('HGET', KEYS[1], 'digest')
if stored and string.find(' ' .. ARGV[1] .. ' ', ' ' .. stored .. ' ', 1, true) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return decide('approved', 0)
end

-- Wrong, expired and never-requested all count: each is a guess.
local fails = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local max = tonumber(ARGV[2])
if fails >= max then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
  return decide('locked', tonumber(ARGV[3]))
end
return decide('rejected', max - fails)
