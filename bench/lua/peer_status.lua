-- Status reads of settled transactions, cycling through BENCH_CHECKOUT_IDS.
local ids = {}
for id in string.gmatch(os.getenv("BENCH_CHECKOUT_IDS"), "[^,]+") do ids[#ids + 1] = id end
local counter = 0

function request()
  counter = counter + 1
  return wrk.format("GET", "/payments/" .. ids[(counter % #ids) + 1] .. "/")
end
