-- get.lua: GET /api/tasks/{id} of a random preloaded task (linearizable: a
-- ReadIndex round first, the server's default; pass `local` for ?consistency=local).
--
--   target/release/loadtest preload --url http://127.0.0.1:8080 -n 1000 --ids-out /tmp/ids.txt
--   wrk -t2 -c64 -d10s --timeout 5s --latency -s loadtest/wrk/get.lua http://127.0.0.1:8080 -- /tmp/ids.txt [local]
--
-- The counterpart of etcd-bench's range.lua (1,000 preloaded ~200 B records).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local paths, n = {}, 0

function init(args)
  local file = args[1] or "ids.txt"
  local suffix = (args[2] == "local") and "?consistency=local" or ""
  for id in io.lines(file) do
    if #id > 0 then
      n = n + 1
      paths[n] = "/api/tasks/" .. id .. suffix
    end
  end
  assert(n > 0, "no ids in " .. file)
  math.randomseed(os.time() + (tid or 0) * 7919)
  wrk.method = "GET"
  taskraft_auth()
end

function request()
  return wrk.format(nil, paths[math.random(1, n)])
end
