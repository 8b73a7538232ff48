#!/usr/bin/env bash
# Server benchmark of face login (docs/BENCHMARKS.md): 1000 enrolled users
# (999 synthetic templates plus one real enrolment; FACEGATE_BENCH_USERS
# sets the synthetic count, e.g. 0, 99999 or 999999), POST /api/face-login
# with a 640-px JPEG on loopback, driven by wrk.
#
#   tools/bench_server.sh [CONNECTIONS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-4}"
secs="${2:-30}"
users="${FACEGATE_BENCH_USERS:-999}"
faces="${FACEGATE_FACES:-../shared/testdata/faces}"
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }

cargo build --release -p facegate -p facegate-app --example seed_users >/dev/null
target/release/facegate setup
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

if [ "$users" -gt 0 ]; then
  target/release/examples/seed_users --data-dir "$work/data" --users "$users"
fi
# The benchmark measures the single-frame path (liveness off) with no rate
# limit; everything else as configured by default.
FACEGATE_LIVENESS=off FACEGATE_RATE_LIMIT_PER_ADDRESS=0 FACEGATE_RATE_LIMIT_PER_ACCOUNT=0 \
  target/release/facegate serve --addr 127.0.0.1:8765 --data-dir "$work/data" >"$work/server.log" 2>&1 &
server=$!
# A large gallery is loaded (and indexed) before the server listens.
for _ in $(seq 1500); do curl -sf -o /dev/null http://127.0.0.1:8765/login && break; sleep 0.2; done
grep -h "gallery ready" "$work/server.log" || true

jar="$work/cookies"
csrf() { curl -sf -b "$jar" -c "$jar" http://127.0.0.1:8765/api/csrf | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/'; }
token=$(csrf)
curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -H 'Content-Type: application/json' \
  -d '{"username":"benchuser","email":"bench@example.org","password":"correct horse battery"}' \
  http://127.0.0.1:8765/api/register >/dev/null
token=$(csrf)
curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -F "image=@$faces/obama_1.jpg" \
  http://127.0.0.1:8765/api/me/faces >/dev/null
token=$(csrf)

# The probe: another photo of the same person, scaled to 640 px like a webcam frame.
if command -v ffmpeg >/dev/null; then
  ffmpeg -loglevel error -y -i "$faces/obama_2.jpg" -vf "scale='if(gt(iw,ih),640,-2)':'if(gt(iw,ih),-2,640)'" -q:v 3 "$work/frame.jpg"
else
  "${CONVERT:-convert}" "$faces/obama_2.jpg" -resize 640x640 -quality 85 "$work/frame.jpg"
fi
check=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -F "image=@$work/frame.jpg" \
  http://127.0.0.1:8765/api/face-login)
[ "$check" = 200 ] || { echo "face login check failed: HTTP $check" >&2; cat "$work/server.log" >&2; exit 1; }
# The login rotated the session id: take the newest cookie from the jar.
cookie="$(awk 'NF >= 7 {c = $6 "=" $7} END {print c}' "$jar")"

echo "users: $(sqlite3 "$work/data/facegate.sqlite3" 'select count(*) from users') enrolled, frame $(identify -format '%wx%h' "$work/frame.jpg" 2>/dev/null || echo 640px)"
FRAME="$work/frame.jpg" COOKIE="$cookie" CSRF="$token" \
  wrk -t "$conns" -c "$conns" -d "${secs}s" --latency -s tools/bench_face_login.lua http://127.0.0.1:8765 | tail -n 4
echo "server RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/$server/status), peak $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/$server/status)"
