-- The SMS pumping breaker of one destination (a country and a number
-- range): its sends and successful verifications, counted in buckets that
-- together span the rolling window, and the time its block ends. One hash
-- per destination, so every script touches a single slot.
-- KEYS: the destination's hash
-- ARGV: action ('send' | 'verify' | 'uncount'), the field to uncount ('' otherwise),
--       bucket ms, buckets per window, min sends, min conversion, block ms,
--       '1' to count a send made while blocked (a CAPTCHA may still let it through),
--       not-after ms
-- Reply: {outcome, ms until the block ends, the field counted ('' for none), sends, verified}
-- Buckets are fields 's<n>' and 'v<n>', n = floor(now / bucket ms); HINCRBY
-- keeps every count exact however many instances race. (A call the cluster
-- client resends after a dropped connection may count twice: one send too
-- many only errs toward caution.)
local key = KEYS[1]
if ARGV[1] == 'uncount' then
  -- A counted send that was refused after all (another rule, a failed
  -- CAPTCHA, a send that surely never left) or a guess that was not right.
  if tonumber(redis.call('HGET', key, ARGV[2]) or '0') > 0 then
    redis.call('HINCRBY', key, ARGV[2], -1)
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
local function keep_for(ms)
  if redis.call('PTTL', key) < ms then
    redis.call('PEXPIRE', key, ms)
  end
end

if ARGV[1] == 'verify' then
  local field = 'v' .. index
  redis.call('HINCRBY', key, field, 1)
  keep_for(window_ms + bucket_ms)
  return {'counted', 0, field, 0, 0}
end

local field = 's' .. index
local count_blocked = ARGV[8] == '1'
local blocked_until = tonumber(redis.call('HGET', key, 'blocked') or '0')
if blocked_until > now then
  if count_blocked then
    redis.call('HINCRBY', key, field, 1)
    return {'blocked', blocked_until - now, field, 0, 0}
  end
  return {'blocked', blocked_until - now, '', 0, 0}
end

-- The window's totals; buckets that fell out of it are dropped.
local sends, verified = 0, 0
local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do
  local kind, at = string.sub(fields[i], 1, 1), tonumber(string.sub(fields[i], 2))
  if at and (kind == 's' or kind == 'v') then
    if at <= index - buckets then
      redis.call('HDEL', key, fields[i])
    elseif kind == 's' then
      sends = sends + tonumber(fields[i + 1])
    else
      verified = verified + tonumber(fields[i + 1])
    end
  end
end

if sends >= tonumber(ARGV[5]) and verified < tonumber(ARGV[6]) * sends then
  -- Tripped, by this send: the block starts and the counts start again,
  -- so that once it ends the destination is judged on new traffic.
  local block_ms = tonumber(ARGV[7])
  redis.call('DEL', key)
  redis.call('HSET', key, 'blocked', now + block_ms)
  local counted = ''
  if count_blocked then
    redis.call('HINCRBY', key, field, 1)
    counted = field
  end
  redis.call('PEXPIRE', key, block_ms + window_ms + bucket_ms)
  return {'tripped', block_ms, counted, sends, verified}
end

redis.call('HINCRBY', key, field, 1)
keep_for(window_ms + bucket_ms)
return {'open', 0, field, sends + 1, verified}
