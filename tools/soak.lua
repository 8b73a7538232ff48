-- wrk script for the soak run (tools/soak.sh): in every ten requests four
-- face logins (SOAK_PROBE, a face not enrolled), one enrolment (SOAK_ENROL)
-- and one deletion of the face it created, two page views and two health
-- checks. SOAK_COOKIE and SOAK_CSRF are a logged-in session; SOAK_RATE is
-- the target rate in requests per second over all connections. Adding a
-- face needs a recent authentication (reauth_seconds), so the session
-- confirms its password (SOAK_PASSWORD) every SOAK_REAUTH_EVERY seconds,
-- as the profile page asks a person to.
local cookie = os.getenv("SOAK_COOKIE")
local csrf = os.getenv("SOAK_CSRF")
local interval = 1000 / tonumber(os.getenv("SOAK_RATE") or "30")
local reauth_every = 1000 * tonumber(os.getenv("SOAK_REAUTH_EVERY") or "120")
local reauth_body = '{"password":"' .. os.getenv("SOAK_PASSWORD") .. '"}'

-- A wall clock in ms (wrk's Lua is LuaJIT; its os.clock is CPU time).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } soak_timespec;
int clock_gettime(int clock, soak_timespec *tp);
]]
local ts = ffi.new("soak_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*all")
  f:close()
  return data
end

local boundary = "soakboundary7MA4YWxkTrZu0gW"
local function upload(jpeg)
  return "--" .. boundary .. "\r\n" ..
    'Content-Disposition: form-data; name="image"; filename="frame.jpg"\r\n' ..
    "Content-Type: image/jpeg\r\n\r\n" .. jpeg .. "\r\n--" .. boundary .. "--\r\n"
end
local probe = upload(read(os.getenv("SOAK_PROBE")))
local enrol = upload(read(os.getenv("SOAK_ENROL")))
local multipart = { Cookie = cookie, ["X-CSRF-Token"] = csrf,
  ["Content-Type"] = "multipart/form-data; boundary=" .. boundary }

local n = 0
local created = {} -- ids of enrolled faces not yet deleted
local reauth_at = nil
request = function()
  if reauth_at == nil then reauth_at = now_ms() end
  if now_ms() - reauth_at >= reauth_every then
    reauth_at = now_ms()
    return wrk.format("POST", "/api/me/reauth", { Cookie = cookie,
      ["X-CSRF-Token"] = csrf, ["Content-Type"] = "application/json" }, reauth_body)
  end
  n = n + 1
  local k = n % 10
  if k == 0 or k == 5 then
    return wrk.format("GET", "/healthz")
  elseif k == 1 then
    return wrk.format("GET", "/profile", { Cookie = cookie })
  elseif k == 6 then
    return wrk.format("GET", "/login")
  elseif k == 3 then
    return wrk.format("POST", "/api/me/faces", multipart, enrol)
  elseif k == 8 and #created > 0 then
    local id = table.remove(created, 1)
    return wrk.format("DELETE", "/api/me/faces/" .. id,
      { Cookie = cookie, ["X-CSRF-Token"] = csrf })
  else
    return wrk.format("POST", "/api/face-login", multipart, probe)
  end
end

-- Paced by the clock: every request takes the next slot of a fixed
-- schedule, whichever connection sends it, so slow answers do not lower
-- the rate as long as a connection is free. A server that falls more than
-- a second behind is not sent a burst to catch up: the missed slots are
-- dropped, and the rate reached shows it.
local due = nil
delay = function()
  local now = now_ms()
  if due == nil or due < now - 1000 then
    due = now
  end
  due = due + interval
  return math.max(0, math.floor(due - interval - now))
end

response = function(status, headers, body)
  if status == 201 then
    local id = body:match('"id"%s*:%s*(%d+)')
    if id then table.insert(created, id) end
  end
end
