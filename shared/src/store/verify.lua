-- Checks a guess and counts it in one step, so concurrent guesses are all
-- counted and a correct code is accepted exactly once.
-- KEYS: code, fails, lock, last, used, daily failures, locks, last approval
--       (one hash tag)
-- ARGV: candidate digests (space separated: the guess under every code
--       key, so a rotation breaks no code in flight), max attempts,
--       lockout ms, failure window ms, guess id, max failures a day,
--       used ttl ms, wrong guesses after which a CAPTCHA is needed (-1:
--       never), '1' if this guess carries a valid CAPTCHA, not-after ms
-- Reply: {outcome, number}: approved 0 | used 0 | rejected attempts-left | locked ms
--        | captcha 0

-- A client that resends this very call (after a dropped connection) gets
-- the first run's answer: a right code is not then counted as a wrong one.
local last = redis.call('HMGET', KEYS[4], 'id', 'outcome', 'n')
if last[1] == ARGV[5] then
  return {last[2], tonumber(last[3])}
end
if late() then
  return {'expired', 0}
end
-- Digests are HMACs under keys Redis never sees, so comparing them as
-- strings leaks nothing an attacker could use through timing.
local candidates = ' ' .. ARGV[1] .. ' '
local function matches(digest)
  return digest and string.find(candidates, ' ' .. digest .. ' ', 1, true) ~= nil
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

-- CAPTCHA step-up: after enough wrong guesses for this phone (since its
-- last success, within the day) a guess needs a solved CAPTCHA. Asking
-- costs nothing: no guess is counted, and a new code does not reset it.
local day = 86400000
local captcha_after = tonumber(ARGV[8])
if captcha_after >= 0 and ARGV[9] ~= '1' then
  local since = math.max(now - day, tonumber(redis.call('GET', KEYS[8]) or '0'))
  if redis.call('ZCOUNT', KEYS[6], '(' .. since, '+inf') >= captcha_after then
    return {'captcha', 0}
  end
end

local max = tonumber(ARGV[2])
local stored = redis.call('HGET', KEYS[1], 'digest')
if matches(stored) then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('SET', KEYS[5], stored, 'PX', ARGV[7])
  redis.call('SET', KEYS[8], now, 'PX', day)
  return decide('approved', 0)
end
-- The code that was just approved, submitted again (a double tap, a
-- client's retry): no second token, and no failure counted. Checked after
-- the live code, so a test number's fixed code asked for again verifies.
if matches(redis.call('GET', KEYS[5])) then
  return decide('used', 0)
end
if not stored then
  -- Nothing to guess (never requested, expired, used, or ended by a
  -- lock): the same answer as a wrong code, but it neither counts nor
  -- locks, so strangers cannot lock a number that is not logging in.
  local fails = tonumber(redis.call('GET', KEYS[2]) or '0')
  return decide('rejected', math.max(0, max - fails))
end
-- A wrong guess at a live code: counted for the code, and for the day.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now - day)
redis.call('ZADD', KEYS[6], now, ARGV[5])
redis.call('PEXPIRE', KEYS[6], day)
local today = redis.call('ZCARD', KEYS[6])
local fails = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
local daily_max = tonumber(ARGV[6])
if fails < max and today < daily_max then
  return decide('rejected', max - fails)
end

-- The lock ends the code. Each lock within a day of the previous one
-- lasts twice as long (capped at a day), and reaching the day's failures
-- lasts until the oldest of them is a day old.
redis.call('DEL', KEYS[1], KEYS[2])
local n = redis.call('INCR', KEYS[7])
redis.call('PEXPIRE', KEYS[7], day)
local ms = math.min(tonumber(ARGV[3]) * 2 ^ (n - 1), day)
if today >= daily_max then
  local oldest = redis.call('ZRANGE', KEYS[6], 0, 0, 'WITHSCORES')
  ms = math.max(ms, tonumber(oldest[2]) + day - now)
end
ms = math.floor(ms)
redis.call('SET', KEYS[3], '1', 'PX', ms)
return decide('locked', ms)
