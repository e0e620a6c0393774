-- etcd-range.lua: POST /v3/kv/range (linearizable, etcd's default) of a random
-- key among read/000000 .. read/<N-1>, which must exist (`loadtest --mix etcd-range`
-- loads 1,000 of them; so does compare-etcd).
--
--   wrk -t2 -c64 -d10s --timeout 5s --latency -s loadtest/wrk/etcd-range.lua http://127.0.0.1:23791 -- [nkeys]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local bodies, n = {}, 0

function init(args)
  n = tonumber(args[1] or "1000")
  for i = 0, n - 1 do
    bodies[i] = '{"key":"' .. b64(string.format("read/%06d", i)) .. '"}'
  end
  math.randomseed(os.time() + (tid or 0) * 7919)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  return wrk.format(nil, "/v3/kv/range", nil, bodies[math.random(0, n - 1)])
end
