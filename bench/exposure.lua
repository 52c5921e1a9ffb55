-- GET /v1/customers/{id}/exposure.  args: API_KEY PICK
dofile("lib.lua")

function init(args)
  start_thread()
  pick = make_picker(args[2])
  headers = {["Authorization"] = "Bearer " .. args[1]}
end

function request()
  return wrk.format("GET", "/v1/customers/" .. pick() .. "/exposure", headers)
end
