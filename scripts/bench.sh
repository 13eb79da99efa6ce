#!/usr/bin/env bash
# `npm run bench`: set-up if needed, build pkg/ and the local server (release), then every
# benchmark of BENCHMARKS.md against a fresh tensorlake-local. Prints the tables, writes
# bench/results/<time>.json (and latest.json), and regenerates the results section of
# BENCHMARKS.md. About 5 minutes on the 2-core machine.
#
#   npm run bench                          everything, BENCHMARKS.md updated
#   npm run bench -- --only percall,list   some sections (percall list concurrency cold size browser); BENCHMARKS.md untouched
#   npm run bench -- --quick               tiny workloads: checks the harness in ~40 s; BENCHMARKS.md untouched
#   npm run bench -- --no-write            everything, print only
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh

say() { printf '[bench] %s\n' "$*" >&2; }

say "build pkg/"
SKIP_SETUP=1 bash scripts/build.sh
say "build the local server (release)"
cargo build --release -p tensorlake-local
export TENSORLAKE_LOCAL_BIN="$PWD/target/release/tensorlake-local"

# The benchmarks import the built package by name, as a user would.
[ -e node_modules/tensorlake-snapshots ] || { echo "node_modules/tensorlake-snapshots is missing (scripts/build.sh links it)" >&2; exit 1; }

exec node bench/run.mjs "$@"
