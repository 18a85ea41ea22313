-- Status polls for invoices that exist, cycling through the ids in BENCH_INVOICE_IDS.
local key = os.getenv("BENCH_SECRET_KEY")
local ids = {}
for id in string.gmatch(os.getenv("BENCH_INVOICE_IDS"), "[^,]+") do ids[#ids + 1] = id end
local counter = 0

function request()
  counter = counter + 1
  local body = '{"invoice_id":"' .. ids[(counter % #ids) + 1] .. '"}'
  return wrk.format("POST", "/api/v1/payment/status/",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key}, body)
end
