#!/usr/bin/env bash
# Browser tests of the web dashboard (tests/browser): Debian's headless
# Chromium driven by Playwright for Python, against target/debug/myelin.
# Screenshots of every page are written to docs/dashboard-*.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/browser-env.sh
source scripts/browser-env.sh
[ -x target/debug/myelin ] || cargo build --locked --bin myelin
"$BROWSER_PYTHON" -m pytest -q -p no:cacheprovider tests/browser "$@"
