-- Random ranges of a fixed length at unaligned offsets (seeking viewers).
-- wrk ... -s ranges.lua <url> -- <path> <fileSize> <rangeLength> <seed>
local path, size, len
local headers = {}

function init(args)
  path = args[1]
  size = tonumber(args[2])
  len = tonumber(args[3])
  pm_seed(tonumber(args[4]) or 1)
end

function request()
  local start = pm_below(size - len + 1)
  headers["Range"] = string.format("bytes=%.0f-%.0f", start, start + len - 1)
  return wrk.format("GET", path, headers)
end
