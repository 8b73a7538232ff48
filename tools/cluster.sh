#!/usr/bin/env bash
# facegate as several instances on one machine, as docs/DEPLOYMENT.md
# describes: a PostgreSQL (tools/pg.sh), two `facegate serve` processes on
# it, and HAProxy (Debian's haproxy package) in front, round robin, no
# sticky sessions, health-checked on /readyz.
#
#   tools/cluster.sh start DIR [PORT]  start everything with its state in the
#                                      empty directory DIR; HAProxy listens
#                                      on 127.0.0.1:PORT (default 8080);
#                                      prints the URL (the only line on stdout)
#   tools/cluster.sh stop DIR          stop everything and remove DIR
#
# The binary is target/release/facegate (or $FACEGATE_BIN), run from the
# repository (models/). Settings of the instances come from the environment
# as usual (FACEGATE_LIVENESS, FACEGATE_FACE_LOGIN, …); the master key is
# generated once into DIR/master.key and given to both as FACEGATE_MASTER_KEY.
# With FACEGATE_DATABASE_URL (and FACEGATE_MASTER_KEY) set, the instances
# use that database (and key) instead of a new PostgreSQL.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${FACEGATE_BIN:-$ROOT/target/release/facegate}

die() {
  echo "tools/cluster.sh: $*" >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {
  local url=$1 i
  for i in $(seq 1 120); do
    if curl -fsS "$url/readyz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

start() {
  local dir=$1 port=${2:-8080} url key name p
  command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] ||
    die "HAProxy is not installed; install Debian's haproxy package: apt-get install haproxy"
  [ -x "$BIN" ] || die "no facegate binary at $BIN; build it: cargo build --release -p facegate"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # PostgreSQL may run as another user (tools/pg.sh): let it through.
  chmod 711 "$dir"
  # FACEGATE_DATABASE_URL and FACEGATE_MASTER_KEY given: the instances
  # use that database and key (e.g. one seeded beforehand); otherwise a
  # fresh PostgreSQL in DIR/pg and a new key.
  url=${FACEGATE_DATABASE_URL:-}
  if [ -z "$url" ]; then
    mkdir -p "$dir/pg"
    url=$("$ROOT/tools/pg.sh" start "$dir/pg")
  fi
  echo "$url" >"$dir/database_url"
  key=${FACEGATE_MASTER_KEY:-$(head -c 32 /dev/urandom | base64)}
  (umask 077 && echo "$key" >"$dir/master.key")
  for name in a b; do
    p=$(free_port)
    echo "$p" >"$dir/$name.port"
    mkdir -p "$dir/$name"
    # A simple command in the background (no subshell of ours left
    # holding the caller's stdout), run from the repository (models/).
    cd "$ROOT"
    FACEGATE_DATABASE_URL=$url FACEGATE_MASTER_KEY=$key FACEGATE_TRUSTED_PROXY=127.0.0.1 \
      setsid "$BIN" serve --addr "127.0.0.1:$p" --data-dir "$dir/$name" \
      >"$dir/$name.log" 2>&1 </dev/null &
    echo $! >"$dir/$name.pid"
  done
  for name in a b; do
    wait_ready "http://127.0.0.1:$(cat "$dir/$name.port")" ||
      die "instance $name did not get ready: $(tail -5 "$dir/$name.log")"
  done
  cat >"$dir/haproxy.cfg" <<CFG
global
    maxconn 4096

defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    option forwardfor

frontend facegate
    bind 127.0.0.1:$port
    default_backend instances

backend instances
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    server a 127.0.0.1:$(cat "$dir/a.port") check inter 1s fall 2 rise 2
    server b 127.0.0.1:$(cat "$dir/b.port") check inter 1s fall 2 rise 2
CFG
  # Daemonised, with no descriptor of ours kept open (a caller reading our
  # output, as in $(tools/cluster.sh start ...), would wait for it forever).
  haproxy -f "$dir/haproxy.cfg" -D -p "$dir/haproxy.pid" </dev/null >"$dir/haproxy.log" 2>&1 ||
    die "HAProxy did not start (is port $port free?): $(tail -3 "$dir/haproxy.log")"
  wait_ready "http://127.0.0.1:$port" || die "HAProxy does not answer on port $port"
  echo "http://127.0.0.1:$port"
}

stop() {
  local dir=$1 f
  for f in "$dir/haproxy.pid" "$dir/a.pid" "$dir/b.pid"; do
    if [ -f "$f" ]; then
      kill "$(head -1 "$f")" 2>/dev/null || true
    fi
  done
  sleep 1
  if [ -d "$dir/pg" ]; then
    "$ROOT/tools/pg.sh" stop "$dir/pg"
  fi
  rm -rf "$dir"
}

case "${1:-}" in
start) start "${2:?DIR}" "${3:-8080}" ;;
stop) stop "${2:?DIR}" ;;
*) die "usage: tools/cluster.sh start DIR [PORT] | stop DIR" ;;
esac
