-- wrk script for tools/bench_server.sh: POST /api/face-login with a JPEG
-- frame as multipart, carrying the session cookie and CSRF token taken
-- from the environment. A successful face login rotates the session id,
-- so each connection keeps the newest cookie the server sets.

local boundary = "facegatebenchboundary"
local frame = os.getenv("FRAME")
local cookie = os.getenv("COOKIE")
local csrf = os.getenv("CSRF")

local f = assert(io.open(frame, "rb"))
local jpeg = f:read("*a")
f:close()

local body = "--" .. boundary .. "\r\n" ..
  "Content-Disposition: form-data; name=\"image\"; filename=\"frame.jpg\"\r\n" ..
  "Content-Type: image/jpeg\r\n\r\n" .. jpeg .. "\r\n--" .. boundary .. "--\r\n"

function init(args)
  current_cookie = cookie
end

function request()
  return wrk.format("POST", "/api/face-login", {
    ["Content-Type"] = "multipart/form-data; boundary=" .. boundary,
    ["X-CSRF-Token"] = csrf,
    ["Cookie"] = current_cookie,
  }, body)
end

statuses = {}

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local set = headers["Set-Cookie"] or headers["set-cookie"]
  if set then
    current_cookie = string.match(set, "^([^;]+)")
  end
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, %.1f requests/s, errors %d\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    summary.requests / (summary.duration / 1e6),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
