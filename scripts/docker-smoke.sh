#!/usr/bin/env bash
# Smoke test of a built Myelin image with docker or podman.
#
#   scripts/docker-smoke.sh [IMAGE]            # IMAGE defaults to "myelin"
#   scripts/docker-smoke.sh --static [IMAGE]   # first build IMAGE from Containerfile
#
# With --static it builds a static binary on the host (RUSTFLAGS
# -C target-feature=+crt-static, target x86_64-unknown-linux-gnu; PROFILE=release
# for an optimised one, default dev) and packages it FROM scratch with the
# Containerfile: no registry and no network needed.
#
# It starts the image with a fresh named volume on /models, then checks:
# GET /healthz, the image HEALTHCHECK, that the process is not root, JSON
# logs, training a small model (POST /train + polling the job), POST /predict,
# that the version survives a container restart (the volume), and that
# MYELIN_SERVER__PORT moves the listener (and the health check follows it).
# Everything it creates is removed at the end (KEEP=1 keeps it).
#
# Environment:
#   ENGINE          docker or podman (default: docker if its daemon answers, else podman)
#   PORT            host port for the main container (default 18080)
#   ALT_PORT        host port for the MYELIN_SERVER__PORT=9000 container (default 19000)
#   SMOKE_RUN_OPTS  extra options for every `run`, e.g.
#                   "--runtime runc --ulimit nofile=1024:1024 --ulimit nproc=4096:4096"
#   KEEP=1          leave the containers and the volume in place
#
# Exit status: 0 all checks passed, 1 a check failed, 2 set-up failed (no
# engine, no image, build failed), 3 the engine could not start a container.
#
# Needs bash and curl on the host.

set -u -o pipefail

STATIC=0
if [ "${1:-}" = --static ]; then
    STATIC=1
    shift
fi
IMAGE="${1:-myelin}"
PORT="${PORT:-18080}"
ALT_PORT="${ALT_PORT:-19000}"
read -r -a RUN_OPTS <<<"${SMOKE_RUN_OPTS:-}"

if [ -z "${ENGINE:-}" ]; then
    if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
        ENGINE=docker
    elif command -v podman >/dev/null 2>&1; then
        ENGINE=podman
    else
        echo "neither a working docker nor podman found" >&2
        exit 2
    fi
fi
command -v curl >/dev/null 2>&1 || { echo "curl is required" >&2; exit 2; }

if [ "$STATIC" = 1 ]; then
    root="$(cd "$(dirname "$0")/.." && pwd)"
    profile="${PROFILE:-dev}"
    dir=debug
    [ "$profile" = release ] && dir=release
    echo "--- static build (profile $profile)"
    (cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --locked --profile "$profile" --target x86_64-unknown-linux-gnu) || exit 2
    binary="$root/target/x86_64-unknown-linux-gnu/$dir/myelin"
    # A static (or static-pie) binary links no shared library.
    if ldd "$binary" 2>&1 | grep -q '=>'; then
        echo "$binary is not static" >&2
        exit 2
    fi
    ctx="$(mktemp -d)"
    mkdir "$ctx/models"
    cp "$binary" "$root/Containerfile" "$ctx/"
    echo "--- $ENGINE build -f Containerfile -t $IMAGE"
    format=()
    [ "$ENGINE" = podman ] && format=(--format docker)
    if ! "$ENGINE" build ${format[@]+"${format[@]}"} -f "$ctx/Containerfile" -t "$IMAGE" "$ctx"; then
        rm -rf "$ctx"
        exit 2
    fi
    rm -rf "$ctx"
fi

SUFFIX="$$"
CTR="myelin-smoke-$SUFFIX"
ALT_CTR="myelin-smoke-alt-$SUFFIX"
VOL="myelin-smoke-$SUFFIX"
BASE="http://127.0.0.1:$PORT"
MODEL="smoke"
FAILED=0

pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; FAILED=$((FAILED + 1)); }
info() { printf '      %s\n' "$*"; }

cleanup() {
    if [ "${KEEP:-0}" = 1 ]; then
        echo "kept: containers $CTR $ALT_CTR, volume $VOL"
        return
    fi
    "$ENGINE" rm -f -v "$CTR" "$ALT_CTR" >/dev/null 2>&1
    "$ENGINE" volume rm -f "$VOL" >/dev/null 2>&1
}
trap cleanup EXIT

# quiet CMD...: run CMD, show its stderr only when it fails (podman without
# systemd logs an error per container about health check timers).
quiet() {
    local err rc
    err="$(mktemp)"
    "$@" >/dev/null 2>"$err"
    rc=$?
    [ "$rc" = 0 ] || cat "$err" >&2
    rm -f "$err"
    return "$rc"
}

# wait_http URL SECONDS: wait until URL answers 200.
wait_http() {
    local url="$1" secs="$2" i
    for ((i = 0; i < secs * 2; i++)); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "$url")" = 200 ]; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}

# health CONTAINER: run the image HEALTHCHECK (podman) or wait for the
# daemon to report healthy (docker).
health() {
    local ctr="$1" status="" i
    if [ "$ENGINE" = podman ]; then
        # periodic checks need systemd timers under podman; run one directly
        "$ENGINE" healthcheck run "$ctr" >/dev/null 2>&1 && return 0
        # the first probe may land before the listener is up: try once more
        sleep 2
        quiet "$ENGINE" healthcheck run "$ctr"
        return
    fi
    for ((i = 0; i < 60; i++)); do
        status="$("$ENGINE" inspect --format '{{.State.Health.Status}}' "$ctr" 2>/dev/null)"
        [ "$status" = healthy ] && return 0
        [ "$status" = unhealthy ] && break
        sleep 1
    done
    echo "health status: ${status:-none}" >&2
    return 1
}

# json_field NAME: first "NAME":value in the JSON on stdin (string quotes removed).
json_field() {
    grep -o "\"$1\":[^,}]*" | head -n 1 | sed -e "s/^\"$1\"://" -e 's/^"//' -e 's/"$//'
}

echo "engine: $ENGINE, image: $IMAGE"
if ! "$ENGINE" image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "image $IMAGE not found; build it first" >&2
    exit 2
fi
info "image size: $("$ENGINE" image inspect --format '{{.Size}}' "$IMAGE") bytes"

# --- start ------------------------------------------------------------------
"$ENGINE" volume create "$VOL" >/dev/null
if quiet "$ENGINE" run -d --name "$CTR" ${RUN_OPTS[@]+"${RUN_OPTS[@]}"} -p "$PORT:8080" -v "$VOL:/models" "$IMAGE"; then
    pass "container started ($CTR)"
else
    # Exit 3: the engine cannot run containers here (e.g. crun refusing the
    # host's cgroup layout or limits); the image itself was not exercised.
    fail "container did not start"; exit 3
fi

# --- liveness ---------------------------------------------------------------
if wait_http "$BASE/healthz" 30; then
    pass "GET /healthz -> 200 ($(curl -s "$BASE/healthz"))"
else
    fail "GET /healthz did not answer 200 within 30 s"
    "$ENGINE" logs "$CTR" 2>&1 | tail -n 20
    exit 1
fi
if health "$CTR"; then pass "HEALTHCHECK (myelin healthcheck) healthy"; else fail "HEALTHCHECK not healthy"; fi

# --- non-root ---------------------------------------------------------------
CFG_USER="$("$ENGINE" inspect --format '{{.Config.User}}' "$CTR")"
if [ "$ENGINE" = podman ]; then
    PROC_USER="$("$ENGINE" top "$CTR" user | tail -n +2 | head -n 1 | tr -d ' ')"
else
    PROC_USER="$("$ENGINE" top "$CTR" -o uid | tail -n +2 | head -n 1 | tr -d ' ')"
fi
if [ -n "$CFG_USER" ] && [ "${CFG_USER%%:*}" != 0 ] && [ "${CFG_USER%%:*}" != root ] &&
    [ -n "$PROC_USER" ] && [ "$PROC_USER" != 0 ] && [ "$PROC_USER" != root ]; then
    pass "runs as non-root (image user $CFG_USER, process user $PROC_USER)"
else
    fail "root check: image user '$CFG_USER', process user '$PROC_USER'"
fi

if "$ENGINE" logs "$CTR" 2>&1 | head -n 1 | grep -q '^{'; then
    pass "logs are JSON"
else
    fail "logs are not JSON: $("$ENGINE" logs "$CTR" 2>&1 | head -n 1)"
fi

# --- train ------------------------------------------------------------------
ROWS=""
for i in $(seq 1 50); do
    x1=$((i % 10))
    x2=$(((i * 7) % 13))
    if [ $((x1 + x2)) -gt 10 ]; then label=high; else label=low; fi
    plan=$([ $((i % 3)) = 0 ] && echo pro || echo basic)
    ROWS="$ROWS${ROWS:+,}{\"x1\":$x1,\"x2\":$x2,\"plan\":\"$plan\",\"label\":\"$label\"}"
done
TRAIN_BODY="{\"model\":\"$MODEL\",\"target\":\"label\",\"params\":{\"hidden_layers\":[8],\"epochs\":3},\"data\":[$ROWS]}"
TRAIN_OUT="$(curl -s -w '\n%{http_code}' -X POST "$BASE/train" -H 'content-type: application/json' -d "$TRAIN_BODY")"
TRAIN_CODE="$(tail -n 1 <<<"$TRAIN_OUT")"
JOB_ID="$(head -n 1 <<<"$TRAIN_OUT" | json_field id)"
if [ "$TRAIN_CODE" = 202 ] && [ -n "$JOB_ID" ]; then
    pass "POST /train (50 rows, 3 epochs) -> 202, job $JOB_ID"
else
    fail "POST /train -> $TRAIN_CODE: $(head -n 1 <<<"$TRAIN_OUT")"; exit 1
fi

STATUS="" JOB=""
for ((i = 0; i < 120; i++)); do
    JOB="$(curl -s "$BASE/jobs/$JOB_ID")"
    STATUS="$(json_field status <<<"$JOB")"
    case "$STATUS" in queued | running) sleep 0.5 ;; *) break ;; esac
done
VERSION="$(json_field version <<<"$JOB")"
if [ "$STATUS" = succeeded ] && [ -n "$VERSION" ]; then
    pass "job $STATUS, version $VERSION"
else
    fail "job ended '$STATUS': $JOB"; exit 1
fi

# --- predict ----------------------------------------------------------------
PREDICT_BODY="{\"model\":\"$MODEL\",\"instances\":[{\"x1\":9,\"x2\":12,\"plan\":\"pro\"},{\"x1\":0,\"x2\":1,\"plan\":\"basic\"}]}"
predict() {
    curl -s -w '\n%{http_code}' -X POST "$BASE/predict" -H 'content-type: application/json' -d "$PREDICT_BODY"
}
OUT="$(predict)"
if [ "$(tail -n 1 <<<"$OUT")" = 200 ] && grep -q '"predictions"' <<<"$OUT"; then
    pass "POST /predict -> 200"
    info "$(head -n 1 <<<"$OUT")"
else
    fail "POST /predict: $OUT"
fi

# --- restart: the version is still in the volume ----------------------------
quiet "$ENGINE" restart "$CTR"
if wait_http "$BASE/healthz" 30; then
    MODEL_JSON="$(curl -s "$BASE/models/$MODEL")"
    OUT="$(predict)"
    if grep -Eq "\"versions\":\[([0-9]+,)*${VERSION}[],]" <<<"$MODEL_JSON" &&
        [ "$(tail -n 1 <<<"$OUT")" = 200 ] && grep -q "\"version\":$VERSION" <<<"$OUT"; then
        pass "after restart: model $MODEL version $VERSION listed and served from the volume"
        if [ "$(curl -s "$BASE/jobs/$JOB_ID" | json_field status)" = succeeded ]; then
            pass "after restart: job record $JOB_ID kept"
        else
            fail "after restart: job record $JOB_ID missing"
        fi
    else
        fail "after restart: model $MODEL_JSON / predict $OUT"
    fi
else
    fail "container did not come back after restart"
fi

# --- MYELIN_SERVER__PORT ------------------------------------------------------
if quiet "$ENGINE" run -d --name "$ALT_CTR" ${RUN_OPTS[@]+"${RUN_OPTS[@]}"} -e MYELIN_SERVER__PORT=9000 -p "$ALT_PORT:9000" "$IMAGE" &&
    wait_http "http://127.0.0.1:$ALT_PORT/healthz" 30; then
    pass "MYELIN_SERVER__PORT=9000: GET /healthz on port 9000 -> 200"
    if health "$ALT_CTR"; then pass "HEALTHCHECK follows MYELIN_SERVER__PORT"; else fail "HEALTHCHECK on port 9000"; fi
else
    fail "MYELIN_SERVER__PORT=9000 container did not answer"
    "$ENGINE" logs "$ALT_CTR" 2>&1 | tail -n 20
fi

echo
if [ "$FAILED" = 0 ]; then
    echo "all checks passed"
else
    echo "$FAILED check(s) failed"
    exit 1
fi

# ---------------------------------------------------------------------------
# Building without a registry: a local stand-in for the builder image.
# The Dockerfile builds FROM docker.io/library/rust:1.95-slim-bookworm. Where that cannot be
# pulled, make an equivalent from Debian packages and a local Rust 1.95
# toolchain (rustc, cargo, rust-std; no docs) and tag it with the same name
# (as root, with debootstrap and podman installed):
#
#   debootstrap --variant=minbase --include=gcc,libc6-dev,ca-certificates \
#       bookworm /tmp/rust-rootfs http://deb.debian.org/debian
#   R=/tmp/rust-rootfs
#   rm -rf $R/var/cache/apt/archives/*.deb $R/var/lib/apt/lists/* \
#       $R/usr/share/doc/* $R/usr/share/man/* $R/usr/share/info/*
#   # only if TLS to crates.io goes through a proxy with its own CA:
#   #   cp /usr/local/share/ca-certificates/*.crt $R/usr/local/share/ca-certificates/
#   #   chroot $R update-ca-certificates
#   T=$(rustc +1.95.0 --print sysroot)
#   D=$R/usr/local/rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu
#   mkdir -p $D/bin $R/usr/local/cargo/bin
#   cp -a $T/bin/cargo $T/bin/rustc $T/bin/rustdoc $D/bin/
#   cp -a $T/lib $D/
#   for b in cargo rustc rustdoc; do
#       ln -sf ../../rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu/bin/$b $R/usr/local/cargo/bin/$b
#   done
#   tar -C $R -c . | podman import \
#       --change 'ENV RUSTUP_HOME=/usr/local/rustup' --change 'ENV CARGO_HOME=/usr/local/cargo' \
#       --change 'ENV PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
#       --change 'ENV RUST_VERSION=1.95.0' --change 'CMD ["bash"]' \
#       - docker.io/library/rust:1.95-slim-bookworm
#
# Then build and test (podman needs --format docker, or the OCI image format
# drops the HEALTHCHECK):
#
#   podman build --format docker -t myelin .
#   scripts/docker-smoke.sh myelin
