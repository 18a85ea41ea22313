-- Daraja success callbacks to the Django peer, each for a different PENDING transaction
-- (BENCH_CALLBACKS_FILE: "checkout_request_id phone value" lines), from BENCH_CALLBACK_OFFSET on.
local lines = {}
for line in io.lines(os.getenv("BENCH_CALLBACKS_FILE")) do lines[#lines + 1] = line end
local offset = tonumber(os.getenv("BENCH_CALLBACK_OFFSET") or "0")
local thread_id = 0
local threads = tonumber(os.getenv("BENCH_THREADS"))

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

local counter = 0
function request()
  local index = (offset + counter * threads + thread_id) % #lines + 1
  counter = counter + 1
  local checkout, phone, value = string.match(lines[index], "(%S+) (%S+) (%S+)")
  local body = '{"Body":{"stkCallback":{"MerchantRequestID":"bench-' .. index ..
    '","CheckoutRequestID":"' .. checkout ..
    '","ResultCode":0,"ResultDesc":"The service request is processed successfully.",' ..
    '"CallbackMetadata":{"Item":[{"Name":"Amount","Value":' .. value ..
    '},{"Name":"MpesaReceiptNumber","Value":"UKS' .. string.format("%07d", index) ..
    '"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20261128112233},' ..
    '{"Name":"PhoneNumber","Value":' .. phone .. '}]}}}}'
  return wrk.format("POST", "/mpesa/stk/callback/",
    {["Content-Type"] = "application/json;charset=UTF-8"}, body)
end
