#!/usr/bin/env bash
# Everything: set-up if needed, build, then every suite. The runners print their own summary
# lines (cargo test, pytest, node --test). Any failure fails the whole run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

step() { printf '\n=== %s ===\n' "$*"; }

step "build the local server (release)"
cargo build --release -p tensorlake-local
export TENSORLAKE_LOCAL_BIN="$PWD/target/release/tensorlake-local"

step "cargo test: client core (native) and local server"
cargo test --workspace --release

step "pytest: the official Python SDK against the local server"
.venv/bin/python -m pytest tests/conformance -q

step "build pkg/"
SKIP_SETUP=1 bash scripts/build.sh

step "wasm-bindgen tests in Node and in headless Chromium"
bash scripts/wasm-tests.sh

step "tsc --strict over the public API"
node_modules/.bin/tsc -p tests/types
echo "tsc: no errors"

step "node --test: the built package, the demo page, the runtime matrix"
suites=(tests/js)
for dir in tests/demo tests/runtimes; do
  [ -d "$dir" ] && suites+=("$dir")
done
node --test "${suites[@]}"
