-- wrk script for the soak run (tools/soak.sh), paced by delay(): in every
-- ten requests four face logins (SOAK_PROBE, a face not enrolled), one
-- enrolment (SOAK_ENROL) and one deletion of the face it created, two page
-- views and two health checks. SOAK_COOKIE and SOAK_CSRF are a logged-in
-- session; SOAK_DELAY_MS is the pause between a connection's requests.
local cookie = os.getenv("SOAK_COOKIE")
local csrf = os.getenv("SOAK_CSRF")
local pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")

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
request = function()
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

delay = function()
  return pause
end

response = function(status, headers, body)
  if status == 201 then
    local id = body:match('"id"%s*:%s*(%d+)')
    if id then table.insert(created, id) end
  end
end
