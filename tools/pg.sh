#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests, from Debian's binaries.
#
#   tools/pg.sh start DIR      initialise a cluster in the empty directory
#                              DIR, start it on a free port of 127.0.0.1 and
#                              print its URL (the only line on stdout)
#   tools/pg.sh stop DIR       stop it and remove DIR
#   tools/pg.sh pause DIR      stop it, keeping its data (fault tests)
#   tools/pg.sh resume DIR     start it again on the same port
#   tools/pg.sh watch DIR PID  stop it (and remove DIR) once process PID
#                              has exited; returns at once
#
# PostgreSQL refuses to run as root: as root, the server runs as the
# unprivileged user facegate-pg (created when missing). Connections over
# TCP need the password in the URL (scram-sha-256, so tests can check that
# wrong credentials are refused); the server is tuned for speed, not
# durability (fsync off): it only ever holds test data.
set -euo pipefail

PG_USER=facegate-pg

die() {
  echo "tools/pg.sh: $*" >&2
  exit 1
}

pg_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
      echo "$dir"
      return
    fi
  done
  if command -v pg_ctl >/dev/null && command -v initdb >/dev/null; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  die "the PostgreSQL server programs (initdb, pg_ctl) are not installed; install Debian's \
postgresql-15 package (or postgresql): apt-get install postgresql-15"
}

# Runs a command as the server's user.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  local dir=$1 bin port password
  bin=$(pg_bin)
  [ -d "$dir" ] || die "$dir is not a directory"
  if [ "$(id -u)" -eq 0 ]; then
    id -u "$PG_USER" >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    chown "$PG_USER" "$dir"
  fi
  password=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
  printf '%s\n' "$password" >"$dir/pwfile"
  [ "$(id -u)" -ne 0 ] || chown "$PG_USER" "$dir/pwfile"
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || die "initdb failed: $(tail -5 "$dir/initdb.log")"
  rm -f "$dir/pwfile"
  port=$(free_port)
  echo "$port" >"$dir/port"
  run_server "$dir"
  echo "postgres://postgres:$password@127.0.0.1:$port/postgres"
}

# Starts the initialised cluster in DIR on the port recorded in DIR/port.
run_server() {
  local dir=$1
  as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $(cat "$dir/port") -k $dir -c listen_addresses=127.0.0.1 -c max_connections=500 \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null ||
    die "the server did not start: $(tail -5 "$dir/server.log")"
}

pause() {
  as_pg "$(pg_bin)/pg_ctl" -D "$1/data" -m fast -w stop >/dev/null ||
    die "the server did not stop"
}

stop() {
  local dir=$1
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
start) start "${2:?DIR}" ;;
stop) stop "${2:?DIR}" ;;
pause) pause "${2:?DIR}" ;;
resume) run_server "${2:?DIR}" ;;
watch)
  dir=${2:?DIR}
  pid=${3:?PID}
  # Detached: outlives this script, not the watched process.
  setsid bash -c "while kill -0 $pid 2>/dev/null; do sleep 1; done; '$0' stop '$dir'" \
    </dev/null >/dev/null 2>&1 &
  ;;
*) die "usage: tools/pg.sh start DIR | stop DIR | pause DIR | resume DIR | watch DIR PID" ;;
esac
