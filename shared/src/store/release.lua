-- Undoes a send whose SMS never left: the code goes, unless a newer request
-- has replaced it meanwhile, and the send no longer counts against limits.
-- KEYS: code, sends; ARGV: send id
if redis.call('HGET', KEYS[1], 'id') == ARGV[1] then
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
