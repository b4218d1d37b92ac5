#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for SECONDS each (default 60), on stable
# Rust without sanitizers. New inputs go to a scratch copy of the corpus;
# a crash leaves its input in fuzz/artifacts/<target>/ and fails the run.
#
# Usage: scripts/fuzz.sh [SECONDS]
# Needs cargo-fuzz: cargo install cargo-fuzz --locked
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds="${1:-60}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

for target in dataset predict_request model_card audio; do
  cp -r "corpus/$target" "$scratch/$target"
  echo "--- fuzz $target for ${seconds}s"
  cargo fuzz run --sanitizer none --dev "$target" "$scratch/$target" -- \
    -max_total_time="$seconds"
done
