-- wrk script: every request is a new person booking a place from the kiosk's keypad screen.
-- The phone is 151 + thread number (2 digits) + a per-thread counter (6 digits), so no two
-- requests in a run share a person (nor a request key); the slot walks round the bookable
-- slots the bench listed in BENCH_SLOTS, so the run books the month rather than one slot.
local counter = 0
local thread_id = 0
local threads = {}
local slots = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(tid) or 0
  for key in string.gmatch(os.getenv("BENCH_SLOTS"), "[^,]+") do
    table.insert(slots, key)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  wrk.headers["X-CSRFToken"] = os.getenv("BENCH_CSRF")
  -- As the keypad's htmx request: the answer is the ticket fragment with HX-Location.
  wrk.headers["HX-Request"] = "true"
  wrk.headers["HX-Target"] = "booking-result"
end

function request()
  counter = counter + 1
  local phone = string.format("151%02d%06d", thread_id, counter)
  local slot = slots[((counter * 2 + thread_id) % #slots) + 1]
  local body = "service=" .. os.getenv("BENCH_SERVICE") .. "&slot=" .. slot .. "&request_key=bench" .. phone .. "&phone=" .. phone
  return wrk.format(nil, "/booking/book", nil, body)
end

-- The same one-line JSON report as every other benchmark.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
