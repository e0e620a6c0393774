-- create.lua: POST /api/tasks, a new ~190-byte task per request (the same
-- record loadtest's `create` and `etcd-put` send).
--
--   wrk -t2 -c64 -d10s --timeout 5s --latency -s loadtest/wrk/create.lua http://127.0.0.1:8080 -- [desc-bytes]
--
-- Aim it at the leader (GET /api/cluster -> leader_url) to compare with etcd-bench's put.lua,
-- which always hits etcd's leader. wrk needs connections >= threads (-t1 with -c1).
-- Non-2xx answers count as errors (errors.status in the RESULT line).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local counter, desc = 0, 150

function init(args)
  desc = tonumber(args[1] or "150")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  taskraft_auth()
end

function request()
  counter = counter + 1
  local title = "wrk " .. tostring(tid or 0) .. "-" .. tostring(counter)
  return wrk.format(nil, "/api/tasks", nil, task_json(title, desc))
end
