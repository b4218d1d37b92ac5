#!/usr/bin/env bash
# An S3-compatible server on loopback for the store tests: moto's server
# (pinned, in a venv under target/), which honours the conditional writes
# the store relies on (If-None-Match: * and If-Match on PutObject).
# Sourced by scripts/test.sh; exports
#   MYELIN_TEST_S3_ENDPOINT  http://127.0.0.1:<port> of a running server
#   MYELIN_TEST_S3_SERVER    the moto_server binary (tests start their own when they need to)
# Idempotent: reuses the venv and a server this script already started.
MOTO_VERSION=5.2.1
s3_venv="$(pwd)/target/s3-venv"
if ! "$s3_venv/bin/moto_server" --help >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  python3 -m venv "$s3_venv"
  timeout 300 "$s3_venv/bin/pip" install -q "moto[server]==$MOTO_VERSION"
fi
export MYELIN_TEST_S3_SERVER="$s3_venv/bin/moto_server"

s3_pidfile="$(pwd)/target/s3-server.pid"
s3_portfile="$(pwd)/target/s3-server.port"
if [ -f "$s3_pidfile" ] && kill -0 "$(cat "$s3_pidfile")" 2>/dev/null && [ -f "$s3_portfile" ]; then
  s3_port="$(cat "$s3_portfile")"
else
  s3_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  "$MYELIN_TEST_S3_SERVER" -H 127.0.0.1 -p "$s3_port" >"$(pwd)/target/s3-server.log" 2>&1 &
  echo $! >"$s3_pidfile"
  echo "$s3_port" >"$s3_portfile"
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$s3_port/" >/dev/null 2>&1 && break
    sleep 0.1
  done
fi
export MYELIN_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
echo "S3 server (moto $MOTO_VERSION) at $MYELIN_TEST_S3_ENDPOINT"
