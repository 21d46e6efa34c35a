-- A delivery receipt says an SMS never reached the handset. If that SMS
-- carried the phone's live code, its resend cooldown is lifted (the send
-- still counts toward the hourly quota), and, when asked, the one fallback
-- call for this code is claimed: a receipt that arrives twice gets it once.
-- KEYS: code; ARGV: send id, '1' to claim the fallback call, not-after ms
-- Reply: {'stale'} | {'lifted'} | {'fallback', sealed code, expiry ms}
if late() then
  return {'expired'}
end
local live = redis.call('HMGET', KEYS[1], 'id', 'sealed', 'exp')
if live[1] ~= ARGV[1] then
  return {'stale'}
end
redis.call('HSET', KEYS[1], 'lifted', ARGV[1])
if ARGV[2] == '1' and live[2] and redis.call('HSETNX', KEYS[1], 'fallback', '1') == 1 then
  return {'fallback', live[2], live[3]}
end
return {'lifted'}
