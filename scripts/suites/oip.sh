#!/usr/bin/env bash
# Open Inference Protocol compatibility with the real clients from PyPI
# (tritonclient[http,grpc], kserve's InferenceRESTClient with protocol v2),
# and the ONNX export and explanations against onnx, onnxruntime and shap,
# driving target/debug/myelin (built by `cargo test` or `cargo build`).
#
# The clients live in a virtual environment under target/oip-venv, made on
# the first run and reused; pip caches nothing outside target/.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=target/oip-venv
KSERVE_VERSION=0.21.0

if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq python3 python3-venv >/dev/null
fi
if [ ! -x target/debug/myelin ]; then
  cargo build --locked
fi
stamp="$VENV/.installed-$(cat tests/python/requirements-oip.txt tests/python/requirements-onnx.txt | sha256sum | cut -c1-16)-$KSERVE_VERSION"
if [ ! -e "$stamp" ]; then
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  export PIP_CACHE_DIR="$PWD/target/pip-cache"
  "$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements-oip.txt
  "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "kserve==$KSERVE_VERSION"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements-onnx.txt
  touch "$stamp"
fi

# tritonclient.grpc and kserve register the same protobuf messages: one
# process each.
for tests in tests/python/test_oip_triton.py tests/python/test_oip_kserve.py tests/python/test_onnx.py; do
  timeout 600 "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$tests"
done
