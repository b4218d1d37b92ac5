#!/usr/bin/env bash
# The whole test suite, set-up included, on a fresh machine:
#   1. every scripts/services/*.sh is sourced: each installs (if missing) and
#      starts on loopback a service some tests need, and exports where it is;
#   2. `cargo test --locked` (unit tests, and integration tests that start the
#      real app on a random port);
#   3. every scripts/suites/*.sh runs: suites in other languages (real Python
#      clients, a real browser) against the binary step 2 built.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
  # shellcheck disable=SC1091
  source "$HOME/.cargo/env"
fi

for service in scripts/services/*.sh; do
  [ -e "$service" ] || continue
  echo "--- service: $service"
  # shellcheck disable=SC1090
  source "$service"
done

echo "--- cargo test"
cargo test --locked "$@"

for suite in scripts/suites/*.sh; do
  [ -e "$suite" ] || continue
  echo "--- suite: $suite"
  bash "$suite"
done
