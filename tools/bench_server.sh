#!/usr/bin/env bash
# Server benchmark of face login (docs/BENCHMARKS.md): 1000 enrolled users
# (999 synthetic templates plus one real enrolment; FACEGATE_BENCH_USERS
# sets the synthetic count, e.g. 0, 99999 or 999999), POST /api/face-login
# with a 640-px JPEG on loopback, driven by wrk.
#
#   tools/bench_server.sh [CONNECTIONS] [SECONDS]
#
# FACEGATE_BENCH_STORE=postgres runs it on a throwaway PostgreSQL
# (tools/pg.sh) instead of the embedded SQLite; FACEGATE_BENCH_INSTANCES=2
# (PostgreSQL only) on two instances behind HAProxy (tools/cluster.sh),
# requests spread round robin. FACEGATE_BENCH_DATA=DIR (SQLite) keeps the
# data directory: seeded on the first run, reused by the next ones (a
# million templates take about two minutes to seed). FACEGATE_BENCH_BIN
# runs another build of the server (to compare two builds in turns; with
# two instances, tools/cluster.sh runs it too).
set -euo pipefail
cd "$(dirname "$0")/.."
conns="${1:-4}"
secs="${2:-30}"
users="${FACEGATE_BENCH_USERS:-999}"
bin="${FACEGATE_BENCH_BIN:-target/release/facegate}"
export FACEGATE_BIN="$(realpath -m "$bin")"
store="${FACEGATE_BENCH_STORE:-sqlite}"
instances="${FACEGATE_BENCH_INSTANCES:-1}"
faces="${FACEGATE_FACES:-../shared/testdata/faces}"
command -v wrk >/dev/null || { echo "wrk is missing (Debian: apt-get install wrk)" >&2; exit 1; }
case "$store/$instances" in
sqlite/1 | postgres/1 | postgres/2) ;;
*) echo "FACEGATE_BENCH_STORE=sqlite|postgres, FACEGATE_BENCH_INSTANCES=1 (or 2 with postgres)" >&2; exit 1 ;;
esac

cargo build --release -p facegate -p facegate-app --example seed_users >/dev/null
target/release/facegate setup
work="$(mktemp -d)"
chmod 711 "$work"
cleanup() {
  [ -z "${server:-}" ] || kill "$server" 2>/dev/null || true
  [ ! -d "$work/cluster" ] || tools/cluster.sh stop "$work/cluster"
  [ ! -f "$work/pg/port" ] || tools/pg.sh stop "$work/pg"
  rm -rf "$work"
}
trap cleanup EXIT

# The benchmark measures the single-frame path (liveness off) with no rate
# limit; everything else as configured by default.
export FACEGATE_LIVENESS=off FACEGATE_RATE_LIMIT_PER_ADDRESS=0 FACEGATE_RATE_LIMIT_PER_ACCOUNT=0
if [ "$store" = postgres ]; then
  mkdir -p "$work/pg"
  FACEGATE_DATABASE_URL="$(tools/pg.sh start "$work/pg")"
  FACEGATE_MASTER_KEY="$(head -c 32 /dev/urandom | base64)"
  export FACEGATE_DATABASE_URL FACEGATE_MASTER_KEY
fi
data="$work/data"
if [ -n "${FACEGATE_BENCH_DATA:-}" ] && [ "$store" = sqlite ]; then
  data="$FACEGATE_BENCH_DATA"
fi
if [ "$users" -gt 0 ] && [ ! -e "$data/facegate.sqlite3" ]; then # else seeded by an earlier run
  target/release/examples/seed_users --data-dir "$data" --users "$users"
fi
pids=()
if [ "$instances" = 2 ]; then
  base="$(tools/cluster.sh start "$work/cluster" 8765)"
  pids=("$(cat "$work/cluster/a.pid")" "$(cat "$work/cluster/b.pid")")
else
  "$bin" serve --addr 127.0.0.1:8765 --data-dir "$data" >"$work/server.log" 2>&1 &
  server=$!
  pids=("$server")
  base=http://127.0.0.1:8765
  # A large gallery is loaded (and indexed) before the server listens.
  for _ in $(seq 1500); do curl -sf -o /dev/null "$base/login" && break; sleep 0.2; done
fi
grep -h "gallery ready" "$work/server.log" "$work"/cluster/*.log 2>/dev/null || true
# HAProxy sends requests on once its health checks see the instances up.
for _ in $(seq 100); do curl -sf -o /dev/null "$base/readyz" && curl -sf -o /dev/null "$base/readyz" && break; sleep 0.2; done
# A set-up request that fails stops the benchmark with the servers' last words.
must() { "$@" || { echo "failed: ${*: -1}" >&2; tail -n 20 "$work/server.log" "$work"/cluster/*.log >&2 2>/dev/null; exit 1; }; }

jar="$work/cookies"
csrf() { curl -sf -b "$jar" -c "$jar" "$base/api/csrf" | sed 's/.*"csrf_token":"\([^"]*\)".*/\1/'; }
token=$(csrf)
account='{"username":"benchuser","email":"bench@example.org","password":"correct horse battery"}'
if curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -H 'Content-Type: application/json' \
  -d "$account" "$base/api/register" >/dev/null; then
  token=$(csrf)
  must curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -F "image=@$faces/obama_1.jpg" \
    "$base/api/me/faces" >/dev/null
else # a kept data directory: the user and the face are there
  must curl -sf -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -H 'Content-Type: application/json' \
    -d '{"username":"benchuser","password":"correct horse battery"}' "$base/api/login" >/dev/null
fi
token=$(csrf)
# Two instances: the other one learns of the enrolment from the change feed.
sleep 1

# The probe: another photo of the same person, scaled to 640 px like a webcam frame.
if command -v ffmpeg >/dev/null; then
  ffmpeg -loglevel error -y -i "$faces/obama_2.jpg" -vf "scale='if(gt(iw,ih),640,-2)':'if(gt(iw,ih),-2,640)'" -q:v 3 "$work/frame.jpg"
else
  "${CONVERT:-convert}" "$faces/obama_2.jpg" -resize 640x640 -quality 85 "$work/frame.jpg"
fi
for _ in "${pids[@]}"; do
  check=$(curl -s -o /dev/null -w '%{http_code}' -b "$jar" -c "$jar" -H "X-CSRF-Token: $token" -F "image=@$work/frame.jpg" \
    "$base/api/face-login")
  [ "$check" = 200 ] || { echo "face login check failed: HTTP $check" >&2; cat "$work/server.log" "$work"/cluster/*.log >&2 2>/dev/null; exit 1; }
done
# The login rotated the session id: take the newest cookie from the jar.
cookie="$(awk 'NF >= 7 {c = $6 "=" $7} END {print c}' "$jar")"

echo "store: $store, instances: $instances, users: $((users + 1)) enrolled, frame $(identify -format '%wx%h' "$work/frame.jpg" 2>/dev/null || echo 640px)"
FRAME="$work/frame.jpg" COOKIE="$cookie" CSRF="$token" \
  wrk -t "$conns" -c "$conns" -d "${secs}s" --latency -s tools/bench_face_login.lua "$base" | tail -n 4
# Where a request's time went: each face pipeline stage's mean, from the
# server's /metrics (one instance: it answers loopback clients directly).
if [ "$instances" = 1 ]; then
  curl -sf "$base/metrics" | awk '/^facegate_face_stage_seconds_(sum|count)\{/ {
      split($1, a, "\""); k = ($1 ~ /_sum\{/) ? "sum" : "count"; v[a[2], k] = $2; order[a[2]] = ++n }
    END { printf "stage means:"; for (s in order) if (v[s, "count"] > 0) printf " %s %.3f ms", s, 1000 * v[s, "sum"] / v[s, "count"]; print "" }'
fi
for pid in "${pids[@]}"; do
  echo "server $pid RSS: $(awk '/VmRSS/ {print $2/1024 " MiB"}' /proc/"$pid"/status), peak $(awk '/VmHWM/ {print $2/1024 " MiB"}' /proc/"$pid"/status)"
done
