-- Claims an Idempotency-Key for one request, or says what became of it.
-- KEYS: idempotency record
-- ARGV: fingerprint of the request, pending ttl ms, claim id, not-after ms
-- Reply: {'fresh'} | {'conflict'} | {'pending'} | {'replay', status, body, retry_after}
local fingerprint = redis.call('HGET', KEYS[1], 'fingerprint')
if fingerprint then
  if fingerprint ~= ARGV[1] then
    return {'conflict'}
  end
  if redis.call('HGET', KEYS[1], 'state') ~= 'done' then
    -- A resend of the claiming call itself is still the claimant.
    if redis.call('HGET', KEYS[1], 'owner') == ARGV[3] then
      return {'fresh'}
    end
    return {'pending'}
  end
  local stored = redis.call('HMGET', KEYS[1], 'status', 'body', 'retry_after')
  return {'replay', stored[1], stored[2], stored[3]}
end
if late() then
  return {'expired'}
end
redis.call('HSET', KEYS[1], 'fingerprint', ARGV[1], 'state', 'pending', 'owner', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'fresh'}
