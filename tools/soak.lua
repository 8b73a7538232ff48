-- wrk script for the soak run (tools/soak.sh): a mix of face logins with a
-- 640-px JPEG, page views and health checks. SOAK_COOKIE, SOAK_CSRF and
-- SOAK_IMAGE come from the environment.
local cookie = os.getenv("SOAK_COOKIE")
local csrf = os.getenv("SOAK_CSRF")
local f = assert(io.open(os.getenv("SOAK_IMAGE"), "rb"))
local jpeg = f:read("*all")
f:close()
local boundary = "soakboundary7MA4YWxkTrZu0gW"
local body = "--" .. boundary .. "\r\n" ..
  'Content-Disposition: form-data; name="image"; filename="frame.jpg"\r\n' ..
  "Content-Type: image/jpeg\r\n\r\n" .. jpeg .. "\r\n--" .. boundary .. "--\r\n"
local n = 0
request = function()
  n = n + 1
  local k = n % 4
  if k == 0 then
    return wrk.format("GET", "/login", { Cookie = cookie })
  elseif k == 1 then
    return wrk.format("GET", "/healthz")
  else
    return wrk.format("POST", "/api/face-login", {
      Cookie = cookie, ["X-CSRF-Token"] = csrf,
      ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }, body)
  end
end
local statuses = {}
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
done = function(summary, latency, requests)
  io.write("status counts (one wrk thread):\n")
  for s, c in pairs(statuses) do io.write(string.format("  %d: %d\n", s, c)) end
end
