-- STK pushes through the gateway API, each to a distinct phone number (one prompt per phone).
local key = os.getenv("BENCH_SECRET_KEY")
-- BENCH_PHONE_BASE (two digits) keeps runs against one simulator on distinct numbers: a
-- number with an open prompt is refused ("unable to lock subscriber").
local base = tonumber(os.getenv("BENCH_PHONE_BASE") or "20")
local api_ref = os.getenv("BENCH_API_REF") or "bench"
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local phone = string.format("2547%02d%06d", base + thread_id, counter % 1000000)
  local body = '{"phone_number":"' .. phone .. '","amount":100,"api_ref":"' .. api_ref .. '"}'
  return wrk.format("POST", "/api/v1/payment/mpesa-stk-push/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
