#!/usr/bin/env bash
# A throwaway Postgres on loopback for the cluster tests (Debian
# `postgresql`, installed if missing): one cluster under target/pg, owned by
# the `postgres` user when run as root. It runs with fsync off (set with
# ALTER SYSTEM, so a benchmark can turn it on): the tests restart it cleanly,
# they never crash the machine under it.
# Sourced by scripts/test.sh; exports
#   MYELIN_TEST_DATABASE_URL      postgres://myelin:myelin@127.0.0.1:<port>/myelin
#   MYELIN_TEST_DATABASE_RESTART  a shell command restarting that server
# Idempotent: reuses a cluster this script already started.
pg_bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get -o DPkg::Lock::Timeout=600 update -q
    apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends postgresql
    pg_bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
  else
    echo "Postgres is not installed (apt-get install postgresql): cluster tests will be skipped"
    return 0 2>/dev/null || exit 0
  fi
fi

pg_dir="$(pwd)/target/pg"
pg_data="$pg_dir/data"
pg_portfile="$pg_dir/port"
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
mkdir -p "$pg_dir"
if [ "$(id -u)" = 0 ]; then chown postgres "$pg_dir"; fi
if [ -f "$pg_portfile" ] && as_owner "$pg_bin/pg_ctl" -D "$pg_data" status >/dev/null 2>&1; then
  pg_port="$(cat "$pg_portfile")"
else
  rm -rf "$pg_data"
  pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  as_owner "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 >"$pg_dir/initdb.log" 2>&1
  as_owner "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_dir/server.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200" start >/dev/null
  echo "$pg_port" >"$pg_portfile"
  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -q -c "CREATE ROLE myelin LOGIN PASSWORD 'myelin' CREATEDB" \
    -c "CREATE DATABASE myelin OWNER myelin" \
    -c "ALTER SYSTEM SET fsync = off" -c "SELECT pg_reload_conf()" >/dev/null
fi
export MYELIN_TEST_DATABASE_URL="postgres://myelin:myelin@127.0.0.1:$pg_port/myelin"
export MYELIN_TEST_DATABASE_RESTART="$( [ "$(id -u)" = 0 ] && echo "runuser -u postgres -- ")$pg_bin/pg_ctl -D $pg_data -w -m fast restart -l $pg_dir/server.log -o '-c listen_addresses=127.0.0.1 -p $pg_port -k $pg_dir -c max_connections=200'"
echo "Postgres at 127.0.0.1:$pg_port"
