#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (and bench/, `make run-hub`).
#
#   scripts/postgres.sh start DIR   initdb + pg_ctl start in DIR; prints the URL on stdout
#   scripts/postgres.sh stop DIR    pg_ctl stop (fast) and remove DIR
#   scripts/postgres.sh run CMD...  start a cluster in a temporary directory, export
#                                   TEST_POSTGRES_URL, run CMD, stop the cluster whatever happens
#
# PostgreSQL refuses to run as root and CI runs as root: as root the cluster runs as the
# `postgres` user (runuser) in a directory that user owns; as anyone else, as that user.
# It listens on 127.0.0.1 on a free port and on a unix socket inside DIR, with trust
# authentication (loopback only, a cluster that lives as long as one test run).
# The `postgresql` package is installed by scripts/system-deps.sh when missing.
set -euo pipefail

bin_dir() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$found" ]; then
    bash "$(dirname "$0")/system-deps.sh" postgres >&2
    found=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$found"
}

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir=$1 bin port
  bin=$(bin_dir)
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
  chmod 700 "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
  port=$(free_port)
  # fsync off: a test cluster is thrown away, durability buys nothing here.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null ||
    { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
  echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
}

stop() {
  local dir=$1 bin
  [ -d "$dir/data" ] || return 0
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

case "${1:-}" in
  start) start "${2:?directory}" ;;
  stop) stop "${2:?directory}" ;;
  run)
    shift
    dir=$(mktemp -d /tmp/kiosk-pg.XXXXXX)
    trap 'stop "$dir"' EXIT
    TEST_POSTGRES_URL=$(start "$dir")
    export TEST_POSTGRES_URL TEST_POSTGRES_DIR=$dir
    echo "PostgreSQL for the tests: $TEST_POSTGRES_URL" >&2
    "$@"
    ;;
  *) echo "usage: $0 start DIR | stop DIR | run CMD..." >&2; exit 2 ;;
esac
