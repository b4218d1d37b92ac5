#!/usr/bin/env bash
# The container image, built offline from a host-built static binary
# (Containerfile) and checked end to end by scripts/docker-smoke.sh. Runs only
# where podman is installed; elsewhere it says so and skips.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v podman >/dev/null 2>&1; then
    echo "container suite skipped: podman is not installed (apt-get install -y podman to run it)"
    exit 0
fi
# Rootless or nested runtimes may start containers with low limits.
export SMOKE_RUN_OPTS="${SMOKE_RUN_OPTS:---ulimit nofile=65536:65536}"
ENGINE=podman PORT="${PORT:-18080}" scripts/docker-smoke.sh --static myelin-ci
podman rmi -f myelin-ci >/dev/null 2>&1 || true
