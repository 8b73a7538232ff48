#!/usr/bin/env bash
# Soak run: `facegate serve` on a fresh data dir with one enrolled user, then
# wrk with tools/soak.lua for DURATION (default 60s) at about RATE requests
# per second (default 30): face logins, enrolments (each deleted again),
# page views and health checks. Prints RSS every 30 s, the status counts and
# the 5xx count from /metrics. Usage: tools/soak.sh [DURATION] [RATE]
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-60s}"
rate="${2:-30}"
faces="../shared/testdata/faces"
data="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
FACEGATE_LIVENESS=off FACEGATE_RATE_LIMIT_PER_ADDRESS=0 \
  target/release/facegate serve --addr 127.0.0.1:8765 --data-dir "$data" >"$data/out.log" 2>&1 &
pid=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:8765/healthz >/dev/null && break; sleep 0.2; done
jar="$data/jar"
csrf() { curl -s -b "$jar" -c "$jar" http://127.0.0.1:8765/api/csrf | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/'; }
t=$(csrf)
curl -s -b "$jar" -c "$jar" -H "X-CSRF-Token: $t" -H 'Content-Type: application/json' \
  -d '{"username":"barack","email":"b@example.com","password":"correct horse battery"}' \
  http://127.0.0.1:8765/api/register >/dev/null
t=$(csrf)
curl -s -b "$jar" -c "$jar" -H "X-CSRF-Token: $t" -F "image=@$faces/obama_1.jpg" \
  http://127.0.0.1:8765/api/me/faces >/dev/null
# The load runs in this logged-in session: it enrols and deletes photos,
# and its face logins use a face that is not enrolled (a success would
# rotate the session id, which wrk cannot follow).
t=$(csrf)
cookie="facegate_session=$(awk '$6=="facegate_session"{print $7}' "$jar")"
rss() { awk '/VmRSS/{print $2}' "/proc/$pid/status"; }
echo "RSS before: $(rss) kB"
# RSS every 30 s during the run, to tell a plateau from steady growth.
SECONDS=0
( while sleep 30; do echo "RSS at +$((SECONDS))s: $(rss) kB"; done ) &
sampler=$!
# Eight connections, each pausing 8/RATE s less a typical response time
# between its requests (wrk's delay()); wrk prints the rate reached.
SOAK_COOKIE="$cookie" SOAK_CSRF="$t" SOAK_PROBE="$faces/biden_2.jpg" \
  SOAK_ENROL="$faces/obama_2.jpg" SOAK_DELAY_MS=$((8000 / rate - 60)) \
  wrk -t1 -c8 -d"$duration" --latency -s tools/soak.lua http://127.0.0.1:8765/
kill "$sampler" 2>/dev/null || true
echo "RSS after: $(rss) kB"
curl -s http://127.0.0.1:8765/metrics | grep -E "^facegate_(http_requests_total|face_pipeline_seconds_count|face_logins_total)"
echo "templates left: $(sqlite3 "$data/facegate.sqlite3" 'SELECT COUNT(*) FROM face_templates' 2>/dev/null || echo '?')"
echo "5xx responses: $(curl -s http://127.0.0.1:8765/metrics | grep -c 'status="5' || true)"
