#!/usr/bin/env bash
# Soak check: `facegate serve` on a fresh data dir with one enrolled user,
# then wrk with tools/soak.lua for DURATION (default 600s) at about RATE
# requests per second (default 30): face logins, enrolments (each deleted
# again), page views and health checks. The face logins post a 640×480
# JPEG frame, what the face-login page sends from a webcam (it scales
# frames to at most 640 px); the enrolments post a full-size photo, as a
# user uploads one on the profile page. Prints RSS every 30 s, then a
# verdict, and exits 1 when a check fails (docs/RELIABILITY.md, "Soak"):
#   - the server died, or answered a 5xx (from /metrics), or wrk saw socket
#     errors or timeouts (no answer within 10 s);
#   - RSS grew by 10 % or more: the median RSS of the second half of the
#     run (after the warm-up) against the median of the first half;
#   - the rate reached is below 90 % of RATE;
#   - any 403 (the session's password confirmation lapsed).
# The warm-up is the first 240 s (SOAK_WARMUP): the allocator's arenas (and
# with the ONNX detector ONNX Runtime's) fill during the first requests and
# step up again the first times several requests overlap (seen up to +210 s),
# so RSS rises at first; growth is only meaningful after that. Medians, not
# single samples, are compared: RSS moves up and down by 20 % and more as
# freed memory is kept or given back, while a leak raises the whole level.
# The session confirms its password every SOAK_REAUTH_EVERY s (default 120),
# within the server's reauth_seconds (FACEGATE_REAUTH_SECONDS, default 300),
# as adding a face needs; a lapse shows as 403s and closed connections.
# SOAK_CLUSTER=1 runs it against two instances on one PostgreSQL behind
# HAProxy (tools/cluster.sh, docs/DEPLOYMENT.md) instead of one instance on
# SQLite: RSS is then the two instances' sum, the counters theirs summed.
# Usage: tools/soak.sh [DURATION] [RATE]; SOAK_PORT (default 8765).
set -euo pipefail
cd "$(dirname "$0")/.."
duration="${1:-600s}"
rate="${2:-30}"
port="${SOAK_PORT:-8765}"
url="http://127.0.0.1:$port"
warmup="${SOAK_WARMUP:-240}"
case "$duration" in
  *m) secs=$((${duration%m} * 60)) ;;
  *s) secs=${duration%s} ;;
  *) secs=$duration ;;
esac
[ "$secs" -gt "$warmup" ] || { echo "soak: DURATION must be longer than the ${warmup} s warm-up" >&2; exit 2; }
command -v wrk >/dev/null || { echo "soak: wrk is not installed (apt-get install wrk)" >&2; exit 2; }
command -v ffmpeg >/dev/null || { echo "soak: ffmpeg is not installed (apt-get install ffmpeg)" >&2; exit 2; }
if curl -s -o /dev/null --max-time 5 "$url/"; then
  echo "soak: something already listens on port $port; choose another with SOAK_PORT" >&2
  exit 2
fi
cargo build --release -q -p facegate
faces="../shared/testdata/faces"
data="$(mktemp -d)"
pids="" sampler="" cluster=""
cleanup() {
  kill $sampler 2>/dev/null || true
  if [ -n "$cluster" ]; then tools/cluster.sh stop "$cluster" >/dev/null 2>&1 || true; fi
  kill $pids 2>/dev/null || true
  rm -rf "$data"
}
trap cleanup EXIT
if [ "${SOAK_CLUSTER:-0}" = 1 ]; then
  # Two instances on one PostgreSQL behind HAProxy (tools/cluster.sh); the
  # load goes to HAProxy, RSS and /metrics are each instance's.
  cluster="$data/cluster"
  chmod 711 "$data" # PostgreSQL may run as another user (tools/pg.sh)
  NO_COLOR=1 FACEGATE_LIVENESS=off FACEGATE_RATE_LIMIT_PER_ADDRESS=0 \
    tools/cluster.sh start "$cluster" "$port" >/dev/null
  pids="$(cat "$cluster/a.pid") $(cat "$cluster/b.pid")"
  instances="http://127.0.0.1:$(cat "$cluster/a.port") http://127.0.0.1:$(cat "$cluster/b.port")"
  logs="$cluster/a.log $cluster/b.log"
else
  NO_COLOR=1 FACEGATE_LIVENESS=off FACEGATE_RATE_LIMIT_PER_ADDRESS=0 \
    target/release/facegate serve --addr "127.0.0.1:$port" --data-dir "$data" >"$data/out.log" 2>&1 &
  pids=$!
  instances="$url"
  logs="$data/out.log"
fi
for _ in $(seq 150); do curl -sf "$url/healthz" >/dev/null && break; sleep 0.2; done
if ! curl -sf "$url/healthz" >/dev/null; then
  echo "soak: the server did not start" >&2
  tail -n 20 $logs >&2
  exit 1
fi
# The face-login frame: a photo of someone not enrolled, cropped to 4:3 and
# scaled to 640×480 like a webcam frame.
ffmpeg -loglevel error -y -i "$faces/biden_2.jpg" \
  -vf "crop='min(iw,ih*4/3)':'min(ih,iw*3/4)',scale=640:480" -q:v 3 "$data/frame.jpg"
jar="$data/jar"
password="correct horse battery"
csrf() { curl -sf -b "$jar" -c "$jar" "$url/api/csrf" | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/'; }
t=$(csrf)
curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $t" -H 'Content-Type: application/json' \
  -d "{\"username\":\"barack\",\"email\":\"b@example.com\",\"password\":\"$password\"}" \
  "$url/api/register" >/dev/null
t=$(csrf)
curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $t" -F "image=@$faces/obama_1.jpg" \
  "$url/api/me/faces" >/dev/null
# The load runs in this logged-in session: it enrols and deletes photos,
# and its face logins use a face that is not enrolled (a success would
# rotate the session id, which wrk cannot follow).
t=$(csrf)
cookie="facegate_session=$(awk '$6=="facegate_session"{print $7}' "$jar")"
# RSS in kB: the instances' sum.
rss() { for p in $pids; do cat "/proc/$p/status"; done 2>/dev/null | awk '/VmRSS/ {n += $2} END {if (n) print n}'; }
echo "RSS before: $(rss) kB"
# RSS of the server every 30 s, to tell a plateau from steady growth; the
# samples also go to a file for the verdict.
SECONDS=0
# (sleep runs in the background so that killing the sampler ends it at once.)
( while sleep 30 >/dev/null & wait $!; do
  echo "$SECONDS $(rss)" | tee -a "$data/rss" | awk '{print "RSS at +" $1 "s: " $2 " kB"}'
done ) &
sampler=$!
# Eight connections sharing one schedule of RATE requests per second
# (tools/soak.lua); wrk prints the rate reached.
SOAK_COOKIE="$cookie" SOAK_CSRF="$t" SOAK_PROBE="$data/frame.jpg" \
  SOAK_ENROL="$faces/obama_2.jpg" SOAK_RATE="$rate" SOAK_PASSWORD="$password" \
  SOAK_REAUTH_EVERY="${SOAK_REAUTH_EVERY:-120}" \
  wrk -t1 -c8 -d"$secs" --timeout 10s --latency -s tools/soak.lua "$url/" | tee "$data/wrk"
end_rss=$(rss)
kill "$sampler" 2>/dev/null || true
# Every instance's counters, summed by series.
for i in $instances; do curl -s "$i/metrics" || true; done |
  awk '/^facegate_/ {v = $NF; $NF = ""; n[$0] += v} END {for (k in n) print k n[k]}' | sort >"$data/metrics"
grep -E "^facegate_(http_requests_total|face_pipeline_seconds_count|face_logins_total)" "$data/metrics" || true
if [ -z "$cluster" ]; then
  echo "templates left: $(sqlite3 "$data/facegate.sqlite3" 'SELECT COUNT(*) FROM face_templates' 2>/dev/null || echo '?')"
fi

# Verdict: one row per check; a value of "unknown" fails.
failed=0
check() { # name, value, limit, awk condition on the value v
  if awk -v v="$2" "BEGIN {exit !(v != \"unknown\" && v != \"\" && ($4))}"; then r=ok; else r=FAIL failed=1; fi
  printf '%-16s %-10s %-8s %s\n' "$1" "$2" "$3" "$r"
}
alive=no
kill -0 $pids 2>/dev/null && curl -sf "$url/healthz" >/dev/null && alive=yes
n5xx=$(awk '/^facegate_http_requests_total\{/ {seen = 1; if (/status="5/) n += $NF}
  END {print seen ? n + 0 : "unknown"}' "$data/metrics")
sockerr=$(awk '/Socket errors:/ {gsub(",", ""); n = $4 + $6 + $8 + $10} END {print n + 0}' "$data/wrk")
rps=$(awk '/^Requests\/sec:/ {print $2}' "$data/wrk")
min_rps=$(awk -v r="$rate" 'BEGIN {print r * 0.9}')
# Median RSS after the warm-up in the first and in the second half of the
# rest of the run (the end counts in the second).
median() { # half: 0 first, 1 second
  echo "$secs ${end_rss:-0}" | cat "$data/rss" - 2>/dev/null |
    awk -v w="$warmup" -v mid=$(((warmup + secs) / 2)) -v half="$1" \
      '$1 >= w && $2 > 0 && ($1 >= mid) == half {print $2}' | sort -n |
    awk '{v[NR] = $1} END {if (NR) print (v[int((NR + 1) / 2)] + v[int(NR / 2) + 1]) / 2; else print 0}'
}
first_med=$(median 0)
second_med=$(median 1)
growth=$(awk -v a="${first_med:-0}" -v b="${second_med:-0}" \
  'BEGIN {if (a > 0 && b > 0) printf "%+.1f", (b - a) * 100 / a; else print "unknown"}')
echo
echo "Soak verdict: ${secs} s at $rate requests/s; RSS growth: median of the second half against the first, after a ${warmup} s warm-up"
check "server alive" "$alive" "yes" 'v == "yes"'
check "5xx responses" "$n5xx" "0" 'v == 0'
check "socket errors" "$sockerr" "0" 'v == 0'
# A 403 means the session lost its right to add faces (reauth lapsed) or
# its CSRF token: the load would no longer be what it claims to be.
n403=$(awk '/^facegate_http_requests_total\{/ {seen = 1; if (/status="403"/) n += $NF}
  END {print seen ? n + 0 : "unknown"}' "$data/metrics")
check "403 responses" "$n403" "0" 'v == 0'
check "requests/s" "${rps:-unknown}" ">= $min_rps" "v >= $min_rps"
check "RSS growth %" "$growth" "< 10" 'v < 10'
mb() { awk -v k="${1:-0}" 'BEGIN {if (k > 0) printf "%d MB", k / 1024; else printf "?"}'; }
echo "RSS: median $(mb "$first_med") in the first half, $(mb "$second_med") in the second;" \
  "$(mb "$end_rss") at the end; max $(mb "$(awk '$2 > m {m = $2} END {print m}' "$data/rss" 2>/dev/null)") in the 30 s samples," \
  "$(mb "$(for p in $pids; do cat "/proc/$p/status"; done 2>/dev/null | awk '/VmHWM/ {n += $2} END {print n}')") peak (VmHWM)"
echo "server log: $(cat $logs | grep -c ' WARN ' || true) WARN, $(cat $logs | grep -c ' ERROR ' || true) ERROR lines"
if [ $failed = 1 ]; then
  echo "SOAK FAILED; last lines of the server log:"
  tail -n 20 $logs
  exit 1
fi
echo "soak passed"
