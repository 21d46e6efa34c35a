-- Shared start of every decision script. The caller passes, as the last
-- ARGV, the epoch millisecond after which it will have given up waiting. A
-- script that only reaches the server later (Redis stalled, then resumed)
-- must change nothing: the client was already told the call failed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[#ARGV]) then
  return {'expired', 0}
end
