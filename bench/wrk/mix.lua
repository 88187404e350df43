-- A precomputed request list replayed in order (the player-start mix, bench/lib/player-mix.ts).
-- wrk ... -s mix.lua <url> -- <pathsFile> <listFile>
--   pathsFile: one URL path per line, line i+1 for library video i (this target's own paths)
--   listFile:  "<video> <start> <end>" per line: a Range request on that video
-- Every request is formatted once in init(), so request() only indexes; at the end of the list it
-- starts over.
local reqs = {}
local n, i = 0, 0

function init(args)
  local paths = {}
  for line in io.lines(args[1]) do
    if line ~= "" then paths[#paths + 1] = line end
  end
  for line in io.lines(args[2]) do
    local v, a, b = line:match("^(%d+) (%d+) (%d+)$")
    if v then
      local path = paths[tonumber(v) + 1]
      if not path then error("mix.lua: no path for video " .. v) end
      n = n + 1
      reqs[n] = wrk.format("GET", path, { Range = "bytes=" .. a .. "-" .. b })
    end
  end
  if n == 0 then error("mix.lua: empty request list " .. tostring(args[2])) end
end

function request()
  i = i % n + 1
  return reqs[i]
end
