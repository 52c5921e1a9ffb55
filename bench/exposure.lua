-- GET /v1/customers/{id}/exposure.  args: API_KEYS (comma-separated) PICK
dofile("lib.lua")

function init(args)
  start_thread()
  pick = make_picker(args[2])
  next_key = make_keys(args[1])
  headers = {}
end

function request()
  headers["Authorization"] = next_key()
  return wrk.format("GET", "/v1/customers/" .. pick() .. "/exposure", headers)
end
