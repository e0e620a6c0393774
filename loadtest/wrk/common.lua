-- common.lua: helpers shared by the wrk scripts here (loaded with dofile).
-- Same shape as the etcd peer benchmark's scripts (shared/research/etcd-bench):
-- wrk runs one LuaJIT state per thread plus one for setup/done.
local bit = require("bit")
local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local enc = {}
for i = 1, 64 do enc[i - 1] = alphabet:sub(i, i) end

function b64(s)
  local out, n = {}, #s
  for i = 1, n, 3 do
    local a, b, c = s:byte(i, i + 2)
    local v = bit.bor(bit.lshift(a, 16), bit.lshift(b or 0, 8), c or 0)
    out[#out + 1] = enc[bit.band(bit.rshift(v, 18), 63)]
      .. enc[bit.band(bit.rshift(v, 12), 63)]
      .. (b and enc[bit.band(bit.rshift(v, 6), 63)] or "=")
      .. (c and enc[bit.band(v, 63)] or "=")
  end
  return table.concat(out)
end

-- The task record every write carries, as `loadtest` sends it: a title and
-- `desc_bytes` of description (150 -> about 190 bytes of JSON in all).
local filler = string.rep("lorem ipsum dolor sit amet ", 100)
function task_json(title, desc_bytes)
  return '{"title":"' .. title .. '","description":"' .. filler:sub(1, desc_bytes) .. '"}'
end

-- thread numbering (setup runs in the main state once per thread)
local nthreads = 0
function setup(thread)
  nthreads = nthreads + 1
  thread:set("tid", nthreads)
end

-- No response() hook: defining one makes wrk hand every response to Lua,
-- which costs client CPU. Non-2xx answers are counted by wrk (errors.status).

-- machine-readable summary line (same fields as etcd-bench's RESULT line)
function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f max_ms=%.3f mean_ms=%.3f "
    .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, latency.mean / 1e3,
    e.connect, e.read, e.write, e.status, e.timeout))
end

-- taskraft's api needs a credential: the demo's service token, from
-- $TASKRAFT_TOKEN (as `loadtest` sends it). Call from init().
function taskraft_auth()
  local token = os.getenv("TASKRAFT_TOKEN")
  if token and #token > 0 then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end
