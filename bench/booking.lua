-- wrk script: every request is a new person booking a place from the kiosk's keypad screen
-- (phones 151…, bench/keypad.lua; the request key follows the phone, so no two requests share
-- one), as the keypad's htmx request: the answer is the ticket fragment with HX-Location. The
-- slot walks round the bookable slots the bench listed in BENCH_SLOTS, so the run books the
-- month rather than one slot.
local slots = {}

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "keypad.lua")({
  path = "/booking/book",
  prefix = "151",
  headers = { ["HX-Request"] = "true", ["HX-Target"] = "booking-result" },
  init = function()
    for key in string.gmatch(os.getenv("BENCH_SLOTS"), "[^,]+") do
      table.insert(slots, key)
    end
  end,
  body = function(phone, counter, thread_id)
    local slot = slots[((counter * 2 + thread_id) % #slots) + 1]
    return "service=" .. os.getenv("BENCH_SERVICE") .. "&slot=" .. slot .. "&request_key=bench" .. phone .. "&phone=" .. phone
  end,
})
