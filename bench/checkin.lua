-- wrk script: every request is a new person checking in from the phone page.
-- The phone is 150 + thread number (2 digits) + a per-thread counter (6 digits), so no two
-- requests in a run share a person; the bench registered those numbers as members.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = tonumber(tid) or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.headers["Cookie"] = os.getenv("BENCH_COOKIE")
  wrk.headers["X-CSRFToken"] = os.getenv("BENCH_CSRF")
end

function request()
  counter = counter + 1
  local phone = string.format("150%02d%06d", thread_id, counter)
  local body = "activity=" .. os.getenv("BENCH_ACTIVITY") .. "&pass=" .. os.getenv("BENCH_PASS") .. "&phone=" .. phone
  return wrk.format(nil, "/c/checkin", nil, body)
end

-- The same one-line JSON report as every other benchmark.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
