#!/usr/bin/env bash
# Property-based API test: Schemathesis generates requests from
# openapi/openapi.json against a running server with API keys on and checks
# that no answer is a 5xx, every status code, content type, header and body
# is the documented one, and requests without a key are refused.
#
# Usage: scripts/schemathesis.sh [BINARY] [MAX_EXAMPLES]
#   BINARY        the myelin binary (default target/debug/myelin)
#   MAX_EXAMPLES  generated examples per operation and phase (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."

binary="${1:-target/debug/myelin}"
examples="${2:-50}"
venv="target/schemathesis-venv"
key="schemathesis-key-$(date +%s)-0123456789"

if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "schemathesis==4.32.5"
fi

store="$(mktemp -d)"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
MYELIN_SERVER__HOST=127.0.0.1 MYELIN_SERVER__PORT="$port" MYELIN_GRPC__PORT=0 MYELIN_STORE__PATH="$store" \
  MYELIN_AUTH__KEYS="admin+inference+read:$key" MYELIN_LOG__LEVEL=warn \
  "$binary" serve >"$store/server.log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$store"
}
trap cleanup EXIT

healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
    "http://127.0.0.1:$port/healthz" 2>/dev/null
}
for _ in $(seq 100); do
  healthy && break
  sleep 0.1
done

"$venv/bin/st" run openapi/openapi.json \
  --url "http://127.0.0.1:$port" \
  -H "Authorization: Bearer $key" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,ignored_auth \
  --max-examples "$examples" \
  --seed 1 \
  --no-color

# The server is still up and nothing panicked.
healthy || { echo "the server stopped answering" >&2; cat "$store/server.log" >&2; exit 1; }
if grep -q "panicked" "$store/server.log"; then
  echo "the server panicked:" >&2
  cat "$store/server.log" >&2
  exit 1
fi
