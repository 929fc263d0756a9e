-- wrk's side of tools/scripts/evaluate-wrk.sh: one of three requests, chosen by the first
-- argument after `--`, with the admin key as the second:
--   live  GET /health/live
--   one   POST /ofrep/v1/evaluate/flags/bench.wrk  (one flag)
--   bulk  POST /ofrep/v1/evaluate/flags            (every flag)
-- The OFREP requests cycle through 1,024 targeting keys, formatted once in init() so wrk
-- spends nothing per request on Lua string work.
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
