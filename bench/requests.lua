-- requests.lua — wrk script: replay a request file, check every status.
--
--   wrk ... -s bench/requests.lua URL -- FILE EXPECTED_STATUS
--
-- FILE holds one request a line, tab-separated, the format bench-loadgen
-- reads too:  METHOD <TAB> PATH <TAB> TOKEN <TAB> BODY   (TOKEN "-" = none,
-- BODY optional, sent as application/json).  Each wrk thread formats every
-- line once at start and then cycles through them from its own offset, so
-- threads do not send the same sequence in lockstep.
--
-- At the end it prints, after wrk's own report:
--   lua.requests N        answers seen
--   lua.errors N          answers whose status was not EXPECTED_STATUS
--   lua.status.NNN N      count per unexpected status
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

local reqs = {}
local n = 0
local i = 0
expected = 200
errors = 0
seen = 0
bad = {}

function init(args)
  local file = args[1]
  expected = tonumber(args[2] or "200")
  for line in io.lines(file) do
    local method, path, token, body = line:match("^([^\t]+)\t([^\t]+)\t([^\t]*)\t?(.*)$")
    if method then
      local h = {}
      if token ~= "" and token ~= "-" then
        h["Authorization"] = "Bearer " .. token
      end
      if body == "" then
        body = nil
      else
        h["Content-Type"] = "application/json"
      end
      n = n + 1
      reqs[n] = wrk.format(method, path, h, body)
    end
  end
  if n == 0 then
    error("no requests in " .. tostring(file))
  end
  -- threads start at different places in the file
  i = math.floor(((tid or 1) - 1) * n / 2) % n
end

function request()
  i = i % n + 1
  return reqs[i]
end

function response(status, headers, body)
  seen = seen + 1
  if status ~= expected then
    errors = errors + 1
    bad[status] = (bad[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local e, s, agg = 0, 0, {}
  for _, t in ipairs(threads) do
    e = e + (t:get("errors") or 0)
    s = s + (t:get("seen") or 0)
    local b = t:get("bad")
    if b then
      for k, v in pairs(b) do
        agg[k] = (agg[k] or 0) + v
      end
    end
  end
  io.write(string.format("lua.requests %d\n", s))
  io.write(string.format("lua.errors %d\n", e))
  for k, v in pairs(agg) do
    io.write(string.format("lua.status.%s %d\n", tostring(k), v))
  end
end
