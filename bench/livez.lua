-- GET /livez: the same server's cheapest route, the base for cached reads.
dofile("lib.lua")

function init(args)
  start_thread()
end

function request()
  return wrk.format("GET", "/livez")
end
