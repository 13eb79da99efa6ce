#!/usr/bin/env bash
# Builds pkg/, the publishable npm package: one optimised .wasm shared by a CommonJS Node entry
# (which `import` uses too, so there is one copy of every class) and an ESM browser entry.
#
#   scripts/build.sh            set-up if needed, then build
#   SKIP_SETUP=1 scripts/build.sh   build only (used by scripts that already ran set-up)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${SKIP_SETUP:-}" = 1 ] || bash scripts/setup.sh

say() { printf '[build] %s\n' "$*" >&2; }

# Replaces exactly one occurrence of a literal string in a file, or fails: the generated glue is
# patched in two places, and a wasm-bindgen upgrade that moves them must break the build, loudly.
replace_once() {
  local file=$1 from=$2 to=$3
  FROM=$from TO=$to node -e '
    const fs = require("fs");
    const [file] = process.argv.slice(1);
    const text = fs.readFileSync(file, "utf8");
    const count = text.split(process.env.FROM).length - 1;
    if (count !== 1) { console.error(`build: expected one "${process.env.FROM}" in ${file}, found ${count}`); process.exit(1); }
    fs.writeFileSync(file, text.replace(process.env.FROM, () => process.env.TO));
  ' "$file"
}

# The shipped wasm is built with the standard library compiled from source, so that std itself
# gets opt-level z + LTO and panics abort without formatting a message (the library never panics
# on purpose; see DEVELOPERS.md). That needs two unstable flags, enabled on the stable toolchain
# with RUSTC_BOOTSTRAP=1 for this one build only, and the rust-src component (setup.sh adds it).
# Reference types are turned off: JS values then live in the glue's heap slab instead of a wasm
# table, which takes per-import shims out of the binary. Together: about 10 KB less gzipped.
say "cargo build (wasm32, profile wasm, std from source)"
RUSTC_BOOTSTRAP=1 \
RUSTFLAGS="-Zlocation-detail=none -Zunstable-options -Cpanic=immediate-abort -Ctarget-feature=-reference-types" \
  cargo build --lib --target wasm32-unknown-unknown --profile wasm --target-dir target/wasm-std \
  -Zbuild-std=std,panic_abort
WASM=target/wasm-std/wasm32-unknown-unknown/wasm/tensorlake_snapshots.wasm

GEN=target/bindgen
rm -rf "$GEN"
wasm-bindgen --target nodejs --out-dir "$GEN/node" --out-name glue "$WASM"
wasm-bindgen --target web --out-dir "$GEN/web" --out-name glue "$WASM"
# Both targets must share one binary; if they ever differ, shipping one .wasm would be wrong.
cmp "$GEN/node/glue_bg.wasm" "$GEN/web/glue_bg.wasm"

rm -rf pkg
mkdir -p pkg/node pkg/web
say "wasm-opt -Oz"
# -ocimfs=0: do not inline functions that have one caller; merging big bodies into the async
# state machines compresses worse (about 1.2 KB more gzipped).
node_modules/.bin/wasm-opt -Oz -ocimfs=0 --strip-debug --strip-producers "$GEN/web/glue_bg.wasm" -o pkg/tensorlake_snapshots_bg.wasm

# The JS snippets the wasm imports (js/*.js) are moved next to each glue under stable names. They
# hold only `export class` / `export function` declarations (see their headers), so the CommonJS
# copy for Node is the same file without those `export` keywords, plus a module.exports line.
snippet_path() { (cd "$GEN/$1" && ls "snippets/"*"/js/$2.js"); }

# Node: CommonJS glue reading ../tensorlake_snapshots_bg.wasm, requiring the CommonJS snippets.
cp "$GEN/node/glue.js" pkg/node/glue.cjs
replace_once pkg/node/glue.cjs '`${__dirname}/glue_bg.wasm`' '`${__dirname}/../tensorlake_snapshots_bg.wasm`'
for snippet in js/*.js; do
  name=$(basename "$snippet" .js)
  replace_once pkg/node/glue.cjs "require(String.raw\`./$(snippet_path node "$name")\`)" "require('./$name.cjs')"
  sed -e 's/^export class /class /' -e 's/^export function /function /' "$snippet" > "pkg/node/$name.cjs"
  names=$(sed -n -e 's/^export class \([A-Za-z]*\).*/\1/p' -e 's/^export function \([A-Za-z]*\).*/\1/p' "$snippet" | paste -sd, -)
  printf '\nmodule.exports = { %s };\n' "$names" >> "pkg/node/$name.cjs"
done
cp npm/node/index.cjs npm/node/transport.cjs pkg/node/

# Web: ESM glue fetching ../tensorlake_snapshots_bg.wasm relative to itself.
cp "$GEN/web/glue.js" pkg/web/glue.js
replace_once pkg/web/glue.js "new URL('glue_bg.wasm', import.meta.url)" "new URL('../tensorlake_snapshots_bg.wasm', import.meta.url)"
for snippet in js/*.js; do
  name=$(basename "$snippet" .js)
  replace_once pkg/web/glue.js "'./$(snippet_path web "$name")'" "'./$name.js'"
  cp "$snippet" "pkg/web/$name.js"
done
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
# the same plus init()/initSync() for "./web".
# `[Symbol.dispose]` members are dropped from the declarations: they need TypeScript's esnext
# lib, which would break `tsc --strict` for users on an ES2022 lib (free() does the same thing).
strip_types() { grep -v -e '^/\* @ts-self-types' -e '\[Symbol\.dispose\]()' "$1"; }
strip_types "$GEN/node/glue.d.ts" > pkg/index.d.ts
strip_types "$GEN/web/glue.d.ts" > pkg/web/index.d.ts
grep -q 'export default function __wbg_init' pkg/web/index.d.ts

cp npm/package.json pkg/package.json
cp README.md pkg/README.md 2>/dev/null || true

raw=$(wc -c < pkg/tensorlake_snapshots_bg.wasm)
gz=$(gzip -9c pkg/tensorlake_snapshots_bg.wasm | wc -c)
say "pkg/ ready: wasm $raw bytes, $gz bytes gzipped"

# Tests, examples and benchmarks import the package by its name, through its exports map, exactly
# as a user's code would.
mkdir -p node_modules
ln -sfn ../pkg node_modules/tensorlake-snapshots
