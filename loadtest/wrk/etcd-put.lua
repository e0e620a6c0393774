-- etcd-put.lua: POST /v3/kv/put through etcd's JSON gateway, a new key per
-- request, the value being the same ~190-byte task record create.lua sends.
-- (etcd-bench's put.lua, with loadtest's record as the value.)
--
--   wrk -t2 -c64 -d10s --timeout 5s --latency -s loadtest/wrk/etcd-put.lua http://127.0.0.1:23791 -- <run-tag> [desc-bytes]
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "common.lua")

local counter, prefix, body_tail = 0, nil, nil

function init(args)
  local tag = args[1] or tostring(os.time())
  local desc = tonumber(args[2] or "150")
  prefix = "task/" .. tag .. "/" .. tostring(tid or 0) .. "/"
  body_tail = '","value":"' .. b64(task_json("wrk", desc)) .. '"}'
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local key = prefix .. string.format("%09d", counter)
  return wrk.format(nil, "/v3/kv/put", nil, '{"key":"' .. b64(key) .. body_tail)
end
