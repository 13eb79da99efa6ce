#!/usr/bin/env bash
# Runs tests/wasm.rs against a fresh local server, first in Node, then in headless Chromium, and
# fails unless the browser run really ran the tests (wasm-pack, for one, can "pass" having run none).
set -euo pipefail
cd "$(dirname "$0")/.."

# The runner's web server (tiny_http 0.12 in wasm-bindgen-test-runner) starts with four worker
# threads, each held by one keep-alive connection until the browser closes it, and can queue a
# connection that arrives in a burst behind them for good. Chromium opens one connection per
# JS snippet it fetches in parallel, so with five snippet modules about half of the browser runs
# hung before any output (one module request never answered; seen with `ss`: four busy workers,
# the fifth connection's request unread). Keep the wasm's JS in at most four modules.
snippets=$(grep -rhoE 'module = "/js/[^"]+"' src | sort -u | wc -l)
[ "$snippets" -le 4 ] || { echo "src/ imports $snippets JS snippet modules; the browser run needs at most 4 (see above)" >&2; exit 1; }
BIN=${TENSORLAKE_LOCAL_BIN:-target/release/tensorlake-local}
DATA=$(mktemp -d)
OUT=$(mktemp)
"$BIN" --port 0 --data-dir "$DATA" --snapshot-local-ready-ms 50 --snapshot-completed-ms 100 >"$OUT" 2>/dev/null &
SERVER=$!
trap 'kill $SERVER 2>/dev/null; rm -rf "$DATA" "$OUT"' EXIT
for _ in $(seq 100); do grep -q listening "$OUT" && break; sleep 0.1; done
export TENSORLAKE_TEST_API_URL=$(sed -n 's/.*listening on //p' "$OUT")
[ -n "$TENSORLAKE_TEST_API_URL" ] || { echo "local server did not start" >&2; exit 1; }

# Each run is bounded: a hung browser or runner fails here in minutes, not at CI's time limit.
echo "--- in Node"
timeout 600 cargo test --target wasm32-unknown-unknown --test wasm

echo "--- in headless Chromium"
LOG=$(mktemp)
WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver \
  timeout 600 cargo test --target wasm32-unknown-unknown --test wasm 2>&1 | tee "$LOG"
passed=$(sed -n 's/^test result: ok\. \([0-9]*\) passed.*/\1/p' "$LOG" | tail -1)
grep -q 'Running headless tests in Chrome' "$LOG" || { echo "the browser run did not run in Chrome" >&2; exit 1; }
[ "${passed:-0}" -ge 5 ] || { echo "the browser run passed ${passed:-0} tests; expected at least 5" >&2; exit 1; }
