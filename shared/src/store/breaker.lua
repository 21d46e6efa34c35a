-- The SMS pumping breaker of one destination (a country and a number
-- range): its sends and successful verifications, counted in buckets that
-- together span the rolling window, their running totals, and the time its
-- block ends. One hash per destination, so every script touches one slot.
-- KEYS: the destination's hash
-- ARGV: action ('send' | 'verify' | 'uncount'), the field to uncount ('' otherwise),
--       bucket ms, buckets per window, min sends, min conversion, block ms,
--       '1' to count a send made while blocked (a CAPTCHA may still let it through),
--       not-after ms
-- Reply: {outcome, ms until the block ends, the field counted ('' for none), sends, verified}
-- Fields: 's<n>' and 'v<n>' per bucket (n = floor(now / bucket ms)), 'ts' and
-- 'tv' their totals, 'lo' the oldest bucket still counted, 'blocked' the end
-- of a block. HINCRBY keeps every count exact however many instances race,
-- and the totals make a decision cost a few field reads, not a scan. (A call
-- the cluster client resends after a dropped connection may count twice:
-- one send too many only errs toward caution.)
local key = KEYS[1]
local function total_of(field)
  return string.sub(field, 1, 1) == 's' and 'ts' or 'tv'
end

if ARGV[1] == 'uncount' then
  -- A counted send that was refused after all (another rule, a failed
  -- CAPTCHA, a send that surely never left).
  -- A bucket already out of the window has left the totals on its own.
  if tonumber(redis.call('HGET', key, ARGV[2]) or '0') > 0 then
    redis.call('HINCRBY', key, ARGV[2], -1)
    redis.call('HINCRBY', key, total_of(ARGV[2]), -1)
  end
  return {'uncounted', 0, '', 0, 0}
end
if late() then
  return {'expired', 0, '', 0, 0}
end

local bucket_ms = tonumber(ARGV[3])
local buckets = tonumber(ARGV[4])
local index = math.floor(now / bucket_ms)
local window_ms = bucket_ms * buckets
-- One read for everything a decision needs: this runs on the way to
-- every send and beside every guess, so each call inside it counts.
local state = redis.call('HMGET', key, 'lo', 'blocked', 'ts', 'tv')
local stored_lo, blocked_until = state[1], tonumber(state[2] or '0')
local sends, verified = tonumber(state[3] or '0'), tonumber(state[4] or '0')

-- Buckets that fell out of the window leave the totals: at most once per
-- bucket, so a busy destination pays for it once a minute, not per send.
local lo = tonumber(stored_lo or index)
if index - lo >= 2 * buckets then
  -- Idle for a whole window or more: nothing in it counts any more.
  redis.call('DEL', key)
  if blocked_until > now then
    redis.call('HSET', key, 'blocked', blocked_until)
    redis.call('PEXPIRE', key, blocked_until - now + window_ms + bucket_ms)
  end
  stored_lo, sends, verified = false, 0, 0
else
  for n = lo, index - buckets do
    local old = redis.call('HMGET', key, 's' .. n, 'v' .. n)
    local s, v = tonumber(old[1] or '0'), tonumber(old[2] or '0')
    if s > 0 then sends = redis.call('HINCRBY', key, 'ts', -s) end
    if v > 0 then verified = redis.call('HINCRBY', key, 'tv', -v) end
    redis.call('HDEL', key, 's' .. n, 'v' .. n)
  end
end
local oldest = math.max(lo, index - buckets + 1)
if oldest ~= lo or not stored_lo then
  redis.call('HSET', key, 'lo', oldest)
end

-- Counts one in this bucket. The first count of a bucket (once a minute
-- at most) makes the hash outlive the window from here, and any block
-- still running.
local function count(field)
  if redis.call('HINCRBY', key, field, 1) == 1 then
    redis.call('PEXPIRE', key, window_ms + bucket_ms + math.max(0, blocked_until - now))
  end
  redis.call('HINCRBY', key, total_of(field), 1)
  return field
end

if ARGV[1] == 'verify' then
  return {'counted', 0, count('v' .. index), 0, 0}
end

local field = 's' .. index
local count_blocked = ARGV[8] == '1'
if blocked_until > now then
  if count_blocked then
    return {'blocked', blocked_until - now, count(field), 0, 0}
  end
  return {'blocked', blocked_until - now, '', 0, 0}
end

if sends >= tonumber(ARGV[5]) and verified < tonumber(ARGV[6]) * sends then
  -- Tripped, by this send: the block starts and the counts start again,
  -- so that once it ends the destination is judged on new traffic.
  local block_ms = tonumber(ARGV[7])
  redis.call('DEL', key)
  redis.call('HSET', key, 'blocked', now + block_ms, 'lo', index)
  blocked_until = now + block_ms
  local counted = ''
  if count_blocked then
    counted = count(field)
  end
  redis.call('PEXPIRE', key, block_ms + window_ms + bucket_ms)
  return {'tripped', block_ms, counted, sends, verified}
end

count(field)
return {'open', 0, field, sends + 1, verified}
