#!/usr/bin/env bash
# `npm start`: set-up if needed, build the package and the server, assemble the demo site
# (www/ at the root, the built package under /pkg/) and serve it with the local API on
# http://127.0.0.1:8900 (PORT=... to change). Data persists in ./.tensorlake-local.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SKIP_SETUP=1 bash scripts/build.sh
cargo build --release -p tensorlake-local

SITE=target/site
rm -rf "$SITE"
mkdir -p "$SITE"
cp -R www/. "$SITE/"
cp -R pkg "$SITE/pkg"

PORT=${PORT:-8900}
echo "Demo and local API: http://127.0.0.1:$PORT/  (Ctrl-C to stop)"
exec target/release/tensorlake-local --port "$PORT" --static "$SITE" "$@"
