#!/usr/bin/env bash
# Builds pkg/, the publishable npm package: one optimised .wasm shared by wasm-bindgen's own
# `--target nodejs` glue (CommonJS, which Node's `import` entry re-exports, so there is one copy of
# every class) and its `--target web` glue (ESM, for browsers, bundlers, workers). Neither glue is
# edited: upgrading wasm-bindgen is a version change (Cargo.toml, scripts/setup.sh) and a rebuild.
#
#   scripts/build.sh            set-up if needed, then build
#   SKIP_SETUP=1 scripts/build.sh   build only (used by scripts that already ran set-up)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh

say() { printf '[build] %s\n' "$*" >&2; }

# The pinned stable toolchain of rust-toolchain.toml, no unstable flag: the size comes from the
# `wasm` profile (opt-level z, LTO, one codegen unit, panic = abort) and wasm-opt below.
say "cargo build (wasm32, profile wasm)"
# Panic locations name the source files of the crates they come from, which for dependencies is
# a path under the builder's Cargo home (/home/NAME/.cargo/registry/src/index.crates.io-…/): the
# shipped wasm would carry it, and differ from one builder to the next. Remapped to the crate's
# own name and version (`js-sys-0.3.107/src/lib.rs`); 97 bytes gzipped less, too.
remap=""
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do remap="$remap --remap-path-prefix=${dir%/}="; done
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="$remap" cargo build --lib --target wasm32-unknown-unknown --profile wasm
WASM=target/wasm32-unknown-unknown/wasm/tensorlake_snapshots.wasm
NAME=tensorlake_snapshots

GEN=target/bindgen
rm -rf "$GEN"
wasm-bindgen --target nodejs --out-dir "$GEN/node" --out-name "$NAME" "$WASM"
# --omit-default-module-path: the web glue does not name a .wasm of its own next to itself (there
# is none: the one .wasm sits at the package root, where the nodejs glue reads it); the entries in
# npm/web/ pass its URL to init().
wasm-bindgen --target web --omit-default-module-path --out-dir "$GEN/web" --out-name "$NAME" "$WASM"
# Both targets must share one binary; if they ever differ, shipping one .wasm would be wrong.
cmp "$GEN/node/${NAME}_bg.wasm" "$GEN/web/${NAME}_bg.wasm"

rm -rf pkg
mkdir -p pkg/node pkg/web
say "wasm-opt -O2"
# -O2 rather than -Oz: gzipped, it is the smaller of the two here (77,231 against 77,984 bytes;
# -Os 77,705, -O3 77,731, -O4 77,943), and it is the faster code. --converge repeats the passes
# until nothing changes (-150 bytes). -ocimfs=0: do not inline functions that have one caller;
# merging big bodies into the async state machines compresses worse (about 1.2 KB more gzipped;
# -O2 without it: 80,177).
node_modules/.bin/wasm-opt -O2 -ocimfs=0 --converge --strip-debug --strip-producers "$GEN/web/${NAME}_bg.wasm" -o "pkg/${NAME}_bg.wasm"

# Node: the nodejs glue sits at the package root because it reads `${__dirname}/${NAME}_bg.wasm`,
# the one .wasm. It `require`s the JS snippets (js/*.js, ES modules as the web glue needs them) at
# the paths wasm-bindgen gives them, so those are compiled to CommonJS there by TypeScript's
# compiler (a format change, not an edit: Node 18 cannot `require` an ES module).
cp "$GEN/node/$NAME.js" "pkg/$NAME.js"
node_modules/.bin/tsc --allowJs --module commonjs --target es2022 --removeComments false \
  --rootDir "$GEN/node/snippets" --outDir pkg/snippets $(find "$GEN/node/snippets" -name '*.js')
errors_snippet=$(cd "$GEN/node" && ls snippets/*/js/errors.js)
printf "// The error classes the wasm module creates (its snippet %s), for the Node entry.\n'use strict';\nmodule.exports = require('../%s');\n" "$errors_snippet" "$errors_snippet" > pkg/node/errors.cjs
cp npm/node/index.cjs npm/node/transport.cjs pkg/node/

# Web: the web glue and its snippets as generated.
cp "$GEN/web/$NAME.js" pkg/web/
cp -r "$GEN/web/snippets" pkg/web/
printf "// The error classes the wasm module creates (its snippet %s).\nexport * from './%s';\n" "$errors_snippet" "$errors_snippet" > pkg/web/errors.js
cp npm/web/index.js npm/web/auto.js npm/web/package.json pkg/web/

# The Node ESM entry re-exports the CommonJS one by name (Node cannot `export *` from CommonJS
# reliably across versions), so both `import` and `require` share one module instance.
exports=$(node -e 'console.log(Object.keys(require("./pkg/node/index.cjs")).filter(n => !n.startsWith("__")).join(", "))')
{
  echo "// Node ESM entry: the CommonJS entry's exports, so import and require share one instance."
  echo "import cjs from './index.cjs';"
  echo "export const { $exports } = cjs;"
} > pkg/node/index.mjs

# Types: the generated declarations (with the custom section of src/wasm/types.rs) for ".", and
# the web glue's for "./web" (npm/web/index.d.ts re-exports them with its own init()).
# `[Symbol.dispose]` members are dropped from the declarations: they need TypeScript's esnext
# lib, which would break `tsc --strict` for users on an ES2022 lib (free() does the same thing).
strip_types() { grep -v -e '^/\* @ts-self-types' -e '\[Symbol\.dispose\]()' "$1"; }
strip_types "$GEN/node/$NAME.d.ts" > pkg/index.d.ts
strip_types "$GEN/web/$NAME.d.ts" > "pkg/web/$NAME.d.ts"
grep -q 'export type InitInput' "pkg/web/$NAME.d.ts"
cp npm/web/index.d.ts pkg/web/

cp npm/package.json pkg/package.json
cp README.md pkg/README.md 2>/dev/null || true

raw=$(wc -c < "pkg/${NAME}_bg.wasm")
gz=$(gzip -9c "pkg/${NAME}_bg.wasm" | wc -c)
say "pkg/ ready: wasm $raw bytes, $gz bytes gzipped"

# Tests, examples and benchmarks import the package by its name, through its exports map, exactly
# as a user's code would.
mkdir -p node_modules
ln -sfn ../pkg node_modules/tensorlake-snapshots
