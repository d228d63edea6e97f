-- wrk script for benches/http/run.sh: every request asks for a random key of the keys file.
--
--   wrk -t1 -c50 -d10s --latency -s random_keys.lua http://127.0.0.1:PORT -- KEYS_FILE [SEED]
--
-- The keys file (one path a line) is read in `init`, in the thread's own Lua state, and every
-- request is formatted there once, so `request` only picks one (math.random): wrk's own cost per
-- request stays that of a static request. `done` prints one machine-readable line (WRKSTAT ...)
-- that run.sh parses: requests, duration, bytes, socket errors, non-2xx/3xx responses and
-- latency percentiles in microseconds.

local reqs = {}
local n = 0

function init(args)
  local path = args[1] or os.getenv("KEYS_FILE")
  if not path then
    error("random_keys.lua: pass the keys file after `--` (or set KEYS_FILE)")
  end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    if line ~= "" then
      n = n + 1
      reqs[n] = wrk.format("GET", line)
    end
  end
  f:close()
  if n == 0 then
    error("random_keys.lua: no keys in " .. path)
  end
  math.randomseed(tonumber(args[2] or "") or os.time())
end

function request()
  return reqs[math.random(n)]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRKSTAT requests=%d duration_us=%d bytes=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
