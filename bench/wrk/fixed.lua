-- The same request every time: `bytes=0-1` probes, If-None-Match revalidations, whole files.
-- wrk ... -s fixed.lua <url> -- <path> [<header-name> <header-value>]...
local req

function init(args)
  local headers = {}
  local i = 2
  while args[i] and args[i + 1] do
    headers[args[i]] = args[i + 1]
    i = i + 2
  end
  req = wrk.format("GET", args[1], headers)
end

function request()
  return req
end
