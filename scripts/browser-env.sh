#!/usr/bin/env bash
# Sourced by scripts/suites/dashboard.sh and bars/11-dashboard: makes sure
# Debian's `chromium` is installed (apt, as root or with sudo) and that a venv
# with Playwright for Python exists under target/; exports BROWSER_PYTHON.
# Playwright's own browser download is never used.
if [ ! -x /usr/bin/chromium ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get -o DPkg::Lock::Timeout=600 update -q
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends chromium fonts-dejavu-core
fi
BROWSER_VENV=target/browser-venv
if ! "$BROWSER_VENV/bin/python" -c "import playwright, pytest" >/dev/null 2>&1; then
  python3 -m venv "$BROWSER_VENV"
  "$BROWSER_VENV/bin/pip" install -q --disable-pip-version-check -r tests/browser/requirements.txt
fi
export BROWSER_PYTHON="$BROWSER_VENV/bin/python"
