-- wrk script for bench/authorize.py: POST /api/v1/calls/authorize with a unique call id, a
-- random account (SIP login b0 .. b<accounts-1>) and a random number from a file.
--   wrk ... -s bench/authorize.lua URL -- TOKEN NUMBERS_FILE ACCOUNTS TAG
-- done() prints one line "RESULT {json}" with counts and latency percentiles (microseconds).

local threads = {}

function setup(thread)
   thread:set("id", #threads + 1)
   table.insert(threads, thread)
end

function init(args)
   token, accounts, tag = args[1], tonumber(args[3]), args[4]
   numbers = {}
   for line in io.lines(args[2]) do
      if #line > 0 then numbers[#numbers + 1] = line end
   end
   math.randomseed(os.time() * 1000 + id)
   counter, allowed, refused, bad = 0, 0, 0, 0
   reasons = {}
   wrk.method = "POST"
   wrk.headers["Authorization"] = "Bearer " .. token
   wrk.headers["Content-Type"] = "application/json"
end

function request()
   counter = counter + 1
   local body = string.format('{"call_id":"%s-%d-%d","callee":"%s","sip_user":"b%d"}', tag, id, counter,
      numbers[math.random(#numbers)], math.random(accounts) - 1)
   return wrk.format("POST", "/api/v1/calls/authorize", nil, body)
end

function response(status, headers, body)
   if status ~= 200 then
      bad = bad + 1
   elseif body:find('"allowed":%s*true') then
      allowed = allowed + 1
   else
      refused = refused + 1
      local reason = body:match('"reason":%s*"([%w_]+)"') or "?"
      reasons[reason] = (reasons[reason] or 0) + 1
   end
end

function done(summary, latency, requests)
   local a, r, b = 0, 0, 0
   local why = {}
   for _, t in ipairs(threads) do
      a = a + t:get("allowed")
      r = r + t:get("refused")
      b = b + t:get("bad")
      for k, v in pairs(t:get("reasons")) do why[k] = (why[k] or 0) + v end
   end
   local parts = {}
   for k, v in pairs(why) do parts[#parts + 1] = string.format('"%s":%d', k, v) end
   local e = summary.errors
   io.write(string.format(
      'RESULT {"requests":%d,"duration_us":%d,"allowed":%d,"refused":%d,"non_200":%d,' ..
      '"socket_errors":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,"max_us":%d,"mean_us":%.1f,' ..
      '"reasons":{%s}}\n',
      summary.requests, summary.duration, a, r, b, e.connect + e.read + e.write + e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
      latency.max, latency.mean, table.concat(parts, ",")))
end
