-- wrk's side of tools/scripts/evaluate-wrk.sh: one of four requests, chosen by the first
-- argument after `--`, with the admin key as the second:
--   live    GET /health/live
--   one     POST /ofrep/v1/evaluate/flags/bench.wrk  (one flag)
--   bulk    POST /ofrep/v1/evaluate/flags            (every flag)
--   ingest  POST /v1/events: one event, its data a 20-number object with a nested object and
--           an array (~600 bytes of JSON), each from one of 1,024 sources
-- The requests cycle through 1,024 variants, formatted once in init() so wrk spends nothing
-- per request on Lua string work.
local requests = {}
local n, i = 0, 0

function init(args)
  local mode, key = args[1] or "live", args[2] or ""
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
  }
  if mode == "live" then
    requests[1] = wrk.format("GET", "/health/live", headers)
  elseif mode == "ingest" then
    local fields = {}
    for f = 1, 20 do fields[f] = string.format('"metric_%02d":%d.5', f, f * 37) end
    local data = table.concat(fields, ",")
      .. ',"labels":{"region":"eu-west-1","host":"web-17","pool":"primary"},"tags":["a","b","c"]'
    for k = 1, 1024 do
      local body = '{"event_type":"cache_metrics","source":"api-' .. k .. '","data":{' .. data
        .. '},"metadata":{"trace":"t' .. k .. '"}}'
      requests[k] = wrk.format("POST", "/v1/events", headers, body)
    end
  else
    local path = "/ofrep/v1/evaluate/flags"
    if mode == "one" then path = path .. "/bench.wrk" end
    for k = 1, 1024 do
      local body = '{"context":{"targetingKey":"client-' .. k .. '","region":"eu"}}'
      requests[k] = wrk.format("POST", path, headers, body)
    end
  end
  n = #requests
end

function request()
  i = i % n + 1
  return requests[i]
end
