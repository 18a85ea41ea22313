-- STK pushes through the gateway API, each to a distinct phone number (one prompt per phone).
local key = os.getenv("BENCH_SECRET_KEY")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local phone = string.format("2547%02d%06d", thread_id + 20, counter % 1000000)
  local body = '{"phone_number":"' .. phone .. '","amount":100,"api_ref":"bench"}'
  return wrk.format("POST", "/api/v1/payment/mpesa-stk-push/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
