#!/usr/bin/env bash
# Offline checks of the deployment files, run by .ci/run:
#   - yamllint (.yamllint.yaml) on deploy/ and compose.yaml;
#   - kubernetes-validate --strict on each manifest of deploy/kubernetes/
#     against the schemas of Kubernetes $K8S_VERSION shipped in the package
#     (unknown fields, and kinds it has no schema for, are errors);
#   - kustomization.yaml lists exactly the manifests beside it;
#   - `kubectl kustomize` of deploy/kubernetes/ when kubectl is installed;
#   - compose.yaml parses and defines the services of the laptop cluster.
# The tools live in a venv under target/ (pinned, installed once, quietly).
# Exits non-zero on the first failing check.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-1.30.0}"
KUBERNETES_VALIDATE_VERSION=1.37.0
YAMLLINT_VERSION=1.38.0
venv="$(pwd)/target/deploy-venv"

if ! "$venv/bin/kubernetes-validate" --version >/dev/null 2>&1 \
  || ! "$venv/bin/yamllint" --version >/dev/null 2>&1; then
  if ! python3 -m venv --help >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
  fi
  mkdir -p target
  python3 -m venv "$venv"
  timeout 300 "$venv/bin/pip" install -q --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" "yamllint==$YAMLLINT_VERSION"
fi

echo "yamllint: deploy/ compose.yaml"
"$venv/bin/yamllint" --strict -c .yamllint.yaml deploy compose.yaml .yamllint.yaml

manifests=()
for file in deploy/kubernetes/*.yaml; do
  # kustomization.yaml configures kustomize; it is not a Kubernetes object.
  [ "$(basename "$file")" = kustomization.yaml ] && continue
  manifests+=("$file")
done
echo "kubernetes-validate --strict (Kubernetes $K8S_VERSION): ${#manifests[@]} manifests"
validate_out="$("$venv/bin/kubernetes-validate" --strict -k "$K8S_VERSION" "${manifests[@]}" 2>&1)" || {
  echo "$validate_out"
  exit 1
}
echo "$validate_out"
# An apiVersion or kind with no schema in that version (a removed beta API,
# a typo) is only a warning there, and passes: fail on it here.
if grep -q '^WARN' <<<"$validate_out"; then
  echo "kubernetes-validate: warnings above count as failures"
  exit 1
fi

"$venv/bin/python" - "${manifests[@]}" <<'PY'
import os
import sys

import yaml

# kustomization.yaml lists exactly the manifests beside it.
with open("deploy/kubernetes/kustomization.yaml") as f:
    listed = set(yaml.safe_load(f)["resources"])
present = {os.path.basename(path) for path in sys.argv[1:]}
if listed != present:
    sys.exit(
        "kustomization.yaml resources differ from the manifests in deploy/kubernetes/: "
        f"not listed {sorted(present - listed)}, missing {sorted(listed - present)}"
    )
print(f"kustomization.yaml: lists the {len(listed)} manifests")

# compose.yaml parses and names the laptop cluster's services.
with open("compose.yaml") as f:
    compose = yaml.safe_load(f)
services = compose.get("services") if isinstance(compose, dict) else None
if not isinstance(services, dict):
    sys.exit("compose.yaml: no `services` mapping")
expected = ["myelin-a", "myelin-b", "postgres", "minio", "minio-init"]
missing = [name for name in expected if name not in services]
if missing:
    sys.exit(f"compose.yaml: missing services {missing}")
for name in ("myelin-a", "myelin-b"):
    if "build" not in services[name] or "MYELIN_STORE__URL" not in services[name].get("environment", {}):
        sys.exit(f"compose.yaml: {name} must be built from the repository with the shared store settings")
print(f"compose.yaml: services {', '.join(expected)}")
PY

if command -v kubectl >/dev/null 2>&1; then
  objects="$(kubectl kustomize deploy/kubernetes | grep -c '^kind:')"
  echo "kubectl kustomize deploy/kubernetes: $objects objects"
else
  echo "kubectl not installed: kustomize build skipped"
fi
echo "deployment files OK"
