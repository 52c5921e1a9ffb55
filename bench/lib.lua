-- Shared by the bench scripts (wrk runs them with bench/ as the working directory).
-- Every thread gets an id; done() prints one machine-readable line, "BENCHJSON {...}".
local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  table.insert(threads, thread)
  next_id = next_id + 1
end

-- "random:N" picks C000001..C<N> uniformly; "list:A,B,C" picks from the list.
function make_picker(spec)
  local kind, rest = spec:match("^(%a+):(.*)$")
  if kind == "random" then
    local n = tonumber(rest)
    return function() return string.format("C%06d", math.random(1, n)) end
  end
  local list = {}
  for c in rest:gmatch("[^,]+") do list[#list + 1] = c end
  local k = #list
  return function() return list[math.random(1, k)] end
end

-- 10.00 .. 999.99, as a decimal string
function random_amount()
  return string.format("%d.%02d", math.random(10, 999), math.random(0, 99))
end

function start_thread()
  math.randomseed(os.time() * 1000 + (id or 0) * 7919)
  n, ok, bad, approved = 0, 0, 0, 0
end

function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
  if body and string.find(body, '"outcome":"approve"', 1, true) then
    approved = approved + 1
  end
end

function done(summary, latency, requests)
  local good, failed, appr = 0, 0, 0
  for _, t in ipairs(threads) do
    good = good + (t:get("ok") or 0)
    failed = failed + (t:get("bad") or 0)
    appr = appr + (t:get("approved") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"seconds":%.3f,"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,' ..
    '"p99_ms":%.3f,"max_ms":%.3f,"ok":%d,"bad":%d,"approved":%d,"err_connect":%d,' ..
    '"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000, good, failed, appr,
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- "K1,K2,..": API keys used in turn, one per request. The product limits each key to
-- 2,000 requests/s per worker (CREDITGATE_RATE_LIMIT_PER_SECOND, its default); a cached
-- read outruns one key's share on a fast machine, and many order-entry clients hold a key each.
function make_keys(spec)
  local list = {}
  for k in spec:gmatch("[^,]+") do list[#list + 1] = "Bearer " .. k end
  local i = 0
  return function()
    i = i % #list + 1
    return list[i]
  end
end
