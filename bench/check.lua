-- POST /v1/credit-checks.  args: API_KEYS (comma-separated) RUN_PREFIX PICK [dry]
-- Every request carries a new order_id (prefix-thread-counter): a repeated one would be an
-- idempotent replay, not a check.
dofile("lib.lua")

function init(args)
  start_thread()
  next_key, prefix, pick = make_keys(args[1]), args[2], make_picker(args[3])
  dry = args[4] == "dry" and ',"dry_run":true' or ""
  headers = {["Content-Type"] = "application/json"}
end

function request()
  n = n + 1
  local body = string.format(
    '{"order_id":"%s-%d-%d","customer_id":"%s","amount":"%s","currency":"EUR",' ..
    '"channel":"erp"%s}', prefix, id, n, pick(), random_amount(), dry)
  headers["Authorization"] = next_key()
  return wrk.format("POST", "/v1/credit-checks", headers, body)
end
