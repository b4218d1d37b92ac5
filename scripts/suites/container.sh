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
# podman's default limits can exceed what a VM or rootless host grants
# (crun: setrlimit ... not permitted): give the container the host's own
# hard limit for open files, and 4096 processes.
hard() { local v; v="$(ulimit -H "$1")"; [ "$v" = unlimited ] && v="$2"; echo "$v"; }
nofile="$(hard -n 65536)"
nproc=4096
export SMOKE_RUN_OPTS="${SMOKE_RUN_OPTS:---ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc}"
# Before the static build (minutes), check that podman can start a container
# at all, with a scratch image holding one static binary the host has.
probe="$(mktemp -d)"
cp /sbin/ldconfig "$probe/ldconfig"
printf 'FROM scratch\nCOPY ldconfig /ldconfig\n' >"$probe/Containerfile"
read -r -a run_opts <<<"$SMOKE_RUN_OPTS"
if ! podman build -q -t myelin-ci-probe "$probe" >/dev/null 2>&1 \
    || ! timeout 60 podman run --rm "${run_opts[@]}" myelin-ci-probe /ldconfig --version >/dev/null 2>"$probe/err"; then
    cat "$probe/err" 2>/dev/null | tail -3 || true
    podman rmi -f myelin-ci-probe >/dev/null 2>&1 || true
    rm -rf "$probe"
    echo "container suite skipped: podman cannot start containers on this host (see the error above)"
    exit 0
fi
podman rmi -f myelin-ci-probe >/dev/null 2>&1 || true
rm -rf "$probe"
status=0
ENGINE=podman PORT="${PORT:-18080}" scripts/docker-smoke.sh --static myelin-ci || status=$?
podman rmi -f myelin-ci >/dev/null 2>&1 || true
if [ "$status" = 3 ]; then
    echo "container suite skipped: the image built, but podman cannot start containers on this host (see the error above)"
    exit 0
fi
exit "$status"
