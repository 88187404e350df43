-- Not loaded by wrk directly: bench/lib/wrk.ts prepends this file to each script it runs
-- (wrk takes a single script), so every scenario reports through the same done() JSON line.

-- Park-Miller minimal standard PRNG (48271, 2^31-1): the same sequence as ParkMiller in
-- bench/lib/prng.ts (which the autocannon runner and the k6 scripts import). Exact in doubles.
local pm_state = 1
function pm_seed(seed)
  pm_state = (math.floor(math.abs(seed)) % 2147483646) + 1
end
function pm_next()
  pm_state = (pm_state * 48271) % 2147483647
  return pm_state
end
-- Uniform integer in [0, span), two draws so spans above 2^31 (8 GiB files) are fine.
function pm_below(span)
  local hi = pm_next() - 1
  local lo = pm_next() - 1
  local u = (hi + lo / 2147483646) / 2147483646
  local v = math.floor(u * span)
  if v > span - 1 then v = span - 1 end
  return v
end

-- One JSON line on stdout with the whole run's figures; latencies in microseconds.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '@@WRKJSON {"requests":%d,"bytes":%.0f,"duration_us":%.0f,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency":{"p50":%.0f,"p90":%.0f,"p99":%.0f,"max":%.0f,"mean":%.1f}}\n',
    summary.requests, summary.bytes, summary.duration,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
