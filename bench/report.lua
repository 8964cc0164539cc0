-- wrk reporter: one JSON line with throughput and latency percentiles (microseconds). "errors"
-- is every failed request; its kinds are given too: timeouts (no answer within wrk's 2 s),
-- non_2xx (an answer with another status), socket (connect, read or write errors).
done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local socket = e.connect + e.read + e.write
  io.write(string.format(
    '{"requests": %d, "rps": %.1f, "p50_us": %d, "p95_us": %d, "p99_us": %d, "errors": %d, "timeouts": %d, "non_2xx": %d, "socket": %d}\n',
    summary.requests, summary.requests / seconds, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    socket + e.status + e.timeout, e.timeout, e.status, socket))
end
