-- Shared start of every decision script. The caller passes, as the last
-- ARGV, the epoch millisecond after which it will have given up waiting. A
-- script that only reaches the server later (Redis stalled, then resumed)
-- must change nothing: the client was already told the call failed. Each
-- script first answers a resend of a call it already decided (a read-only
-- check), and only then asks `late()`, so a late resend still gets its
-- first answer.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function late()
  return now > tonumber(ARGV[#ARGV])
end
