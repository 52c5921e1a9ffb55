-- POST /check on the floor app (bench/floor.py).  args: RUN_PREFIX PICK
dofile("lib.lua")

function init(args)
  start_thread()
  prefix, pick = args[1], make_picker(args[2])
  headers = {["Content-Type"] = "application/json"}
end

function request()
  n = n + 1
  local body = string.format('{"order_id":"%s-%d-%d","customer_id":"%s","amount":"%s"}',
                             prefix, id, n, pick(), random_amount())
  return wrk.format("POST", "/check", headers, body)
end
