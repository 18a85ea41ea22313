-- wrk script: STK pushes to distinct phone numbers (one open prompt per phone is allowed),
-- all outside the 2547000... scenario range.
-- Token, password, timestamp and callback URL come from the environment (see simulator.py).
local token = os.getenv("SIM_TOKEN")
local password = os.getenv("SIM_PASSWORD")
local timestamp = os.getenv("SIM_TIMESTAMP")
local callback = os.getenv("SIM_CALLBACK_URL")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

function request()
  counter = counter + 1
  local phone = string.format("2547%02d%06d", thread_id + 10, counter % 1000000)
  local body = string.format(
    '{"BusinessShortCode":"174379","Password":"%s","Timestamp":"%s",' ..
    '"TransactionType":"CustomerPayBillOnline","Amount":10,"PartyA":"%s","PartyB":"174379",' ..
    '"PhoneNumber":"%s","CallBackURL":"%s","AccountReference":"BENCH","TransactionDesc":"bench"}',
    password, timestamp, phone, phone, callback)
  return wrk.format("POST", "/mpesa/stkpush/v1/processrequest",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. token}, body)
end

local non_200 = 0
function response(status, headers, body)
  if status ~= 200 then non_200 = non_200 + 1 end
end
