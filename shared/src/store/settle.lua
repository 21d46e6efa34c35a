-- Records the response to replay for a claimed Idempotency-Key, or frees the
-- key (empty status) so a retry after a server-side failure runs again.
-- KEYS: idempotency record; ARGV: fingerprint, status, body, retry_after
if redis.call('HGET', KEYS[1], 'fingerprint') ~= ARGV[1] then
  return 0
end
if ARGV[2] == '' then
  redis.call('DEL', KEYS[1])
else
  redis.call('HSET', KEYS[1], 'state', 'done', 'status', ARGV[2], 'body', ARGV[3], 'retry_after', ARGV[4])
end
return 1
