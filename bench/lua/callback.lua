-- Daraja result callbacks, each for a different PROCESSING invoice (BENCH_CALLBACKS_FILE has
-- one "token checkout_request_id phone value" line per invoice); every thread takes a share,
-- from BENCH_CALLBACK_OFFSET on (rounds after the first start where the last one stopped).
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
  local token, checkout, phone, value = string.match(lines[index], "(%S+) (%S+) (%S+) (%S+)")
  local body = '{"Body":{"stkCallback":{"MerchantRequestID":"bench-' .. index ..
    '","CheckoutRequestID":"' .. checkout ..
    '","ResultCode":0,"ResultDesc":"The service request is processed successfully.",' ..
    '"CallbackMetadata":{"Item":[{"Name":"Amount","Value":' .. value ..
    '},{"Name":"MpesaReceiptNumber","Value":"UKS' .. string.format("%07d", index) ..
    '"},{"Name":"Balance"},{"Name":"TransactionDate","Value":20261128112233},' ..
    '{"Name":"PhoneNumber","Value":' .. phone .. '}]}}}}'
  return wrk.format("POST", "/callbacks/stk/" .. token,
    {["Content-Type"] = "application/json;charset=UTF-8"}, body)
end
