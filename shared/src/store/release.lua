-- Undoes a send whose SMS failed: the code goes, unless a newer request has
-- replaced it meanwhile. When the SMS surely never left, the send also stops
-- counting against the cooldown and quota; when it may have been delivered
-- (a timeout, a 5xx), it keeps counting, so retries cannot dodge the limits.
-- KEYS: code, sends; ARGV: send id, '1' to stop counting the send
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
if ARGV[2] == '1' then
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 1
