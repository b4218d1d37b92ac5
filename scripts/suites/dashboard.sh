#!/usr/bin/env bash
# Browser tests of the web dashboard (tests/browser): Debian's headless
# Chromium driven by Playwright for Python, against target/debug/myelin.
# Installs what is missing (as root, or with sudo): the `chromium` package and a
# venv under target/. Playwright's own browser download is never used.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

venv=target/browser-venv
if ! "$venv/bin/python" -c "import playwright, pytest" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/browser/requirements.txt
fi

[ -x target/debug/myelin ] || cargo build --locked --bin myelin

"$venv/bin/python" -m pytest -q -p no:cacheprovider tests/browser "$@"
