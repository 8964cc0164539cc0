-- Shared by the wrk scripts of the keypad screens (checkin.lua, booking.lua): every request is
-- a new person typing a phone number. The phone is the script's 3-digit prefix + the wrk
-- thread's number (2 digits) + a per-thread counter (6 digits), so no two requests of a run
-- share a person; the form is POSTed with the kiosk's cookie and CSRF token (BENCH_COOKIE,
-- BENCH_CSRF). Usage: dofile(this file)({path = ..., prefix = ..., body = function(phone,
-- counter, thread_id) ... end, headers = {...}, init = function() ... end}).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"

return function(options)
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
    for name, value in pairs(options.headers or {}) do
      wrk.headers[name] = value
    end
    if options.init then
      options.init()
    end
  end

  function request()
    counter = counter + 1
    local phone = string.format("%s%02d%06d", options.prefix, thread_id, counter)
    return wrk.format(nil, options.path, nil, options.body(phone, counter, thread_id))
  end

  -- The same one-line JSON report as every other benchmark.
  dofile(here .. "report.lua")
end
