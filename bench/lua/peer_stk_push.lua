-- STK pushes through the Django peer's pay view, each to a distinct phone (as stk_push.lua).
local base = tonumber(os.getenv("BENCH_PHONE_BASE") or "20")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local phone = string.format("2547%02d%06d", base + thread_id, counter % 1000000)
  local body = '{"phone_number":"' .. phone .. '","amount":100,"reference":"bench"}'
  return wrk.format("POST", "/pay/", {["Content-Type"] = "application/json"}, body)
end
