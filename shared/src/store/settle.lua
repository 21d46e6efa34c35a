-- Records the response to replay for a claimed Idempotency-Key, or frees the
-- key (empty status) so a retry after a server-side failure runs again.
-- KEYS: idempotency record; ARGV: fingerprint, status, body, retry_after, replay ttl ms
if redis.call('HGET', KEYS[1], 'fingerprint') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'retry_after', ARGV[4])
  -- A pending claim only lives as long as its request could; the answer is
  -- kept for replay as long as the code it speaks of.
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 1
