-- wrk script: POST one tweet per request, cycling through the JSON bodies in $BODIES (one per line).
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do bodies[#bodies + 1] = line end
local i = 0
local headers = {["Content-Type"] = "application/json"}

request = function()
  i = i % #bodies + 1
  return wrk.format("POST", "/invocations", headers, bodies[i])
end

done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f\n", summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
