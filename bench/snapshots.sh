#!/usr/bin/env bash
# Snapshot and restore times of tensorlake-local, today's format (each sandbox's own layer, zstd
# on all cores) side by side with the one before (the whole root, gzip), in one run: a sandbox
# that wrote 1 GiB of random bytes, and one that changed nothing. Needs root (layers are overlay
# mounts), curl and python3. Usage: bench/snapshots.sh [path/to/tensorlake-local] [rounds]
set -euo pipefail
BIN=${1:-target/release/tensorlake-local}
ROUNDS=${2:-3}
WORK=$(mktemp -d /var/tmp/tl-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  sleep 1  # the servers' clean-up processes unmount what is left
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # name, env assignment -> sets URL (runs in this shell, so the trap can stop it)
  local dir=$WORK/$1
  mkdir -p "$dir"
  env $2 "$BIN" --port 0 --data-dir "$dir/data" --snapshot-local-ready-ms 0 --snapshot-completed-ms 0 \
    >"$dir/out" 2>"$dir/err" &
  PIDS+=($!)
  for _ in $(seq 100); do grep -q listening "$dir/out" 2>/dev/null && break; sleep 0.1; done
  URL=$(sed -n 's/.*listening on //p' "$dir/out" | head -1)
}
field() { python3 -c "import sys,json; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
now() { date +%s%N; }
ms() { echo $(( ($2 - $1) / 1000000 )); }
run() { # url, sandbox, script
  curl -sf -N -X POST "$1/api/v1/processes/run" -H "X-Tensorlake-Sandbox-Id: $2" -H 'content-type: application/json' \
    -d "$(python3 -c 'import json,sys; print(json.dumps({"command":"sh","args":["-c",sys.argv[1]]}))' "$3")" \
    | grep -q '"exit_code":0'
}
create() { curl -sf -X POST "$1/sandboxes" -H 'content-type: application/json' -d "${2:-{\}}" | field sandbox_id; }
snapshot() { # url, sandbox -> "ms snapshot_id size" (no python inside the timed part)
  local t0 id st
  sync  # earlier writes are not this snapshot's to flush
  t0=$(now)
  id=$(curl -sf -X POST "$1/sandboxes/$2/snapshot" | sed -n 's/.*"snapshot_id":"\([^"]*\)".*/\1/p')
  while :; do
    st=$(curl -sf "$1/snapshots/$id")
    case $st in *'"status":"local_ready"'*|*'"status":"completed"'*) break;; *'"status":"failed"'*) echo "failed: $st" >&2; exit 1;; esac
  done
  local t1; t1=$(now)
  echo "$(ms "$t0" "$t1") $id $(echo "$st" | field size_bytes)"
}
restore() { # url, snapshot -> "ms sandbox": the request's own time, as curl saw it
  local out
  sync
  out=$(curl -sf -X POST "$1/sandboxes" -H 'content-type: application/json' \
    -d "{\"snapshot_id\":\"$2\"}" -w '\n%{time_total}')
  echo "$(python3 -c "print(round(float('$(echo "$out" | tail -1)') * 1000))") $(echo "$out" | head -1 | field sandbox_id)"
}

start old TENSORLAKE_LOCAL_LEGACY_TAR_GZ=1; OLD=$URL
start new TENSORLAKE_LOCAL_LEGACY_TAR_GZ=0; NEW=$URL
echo "| Case | Round | Before: whole root, gzip | Now: own layer, zstd | Ratio |"
echo "|---|---|---|---|---|"
for round in $(seq "$ROUNDS"); do
  declare -A SNAP REST SIZE
  for which in OLD NEW; do
    url=${!which}
    sb=$(create "$url")
    run "$url" "$sb" 'head -c 1073741824 /dev/urandom > /data/big && sync'
    read -r t id size < <(snapshot "$url" "$sb")
    SNAP[$which]=$t; SIZE[$which]=$size
    read -r t rsb < <(restore "$url" "$id")
    REST[$which]=$t
    run "$url" "$rsb" 'test "$(stat -c %s /data/big)" = 1073741824'
    curl -sf -X DELETE "$url/sandboxes/$sb" >/dev/null; curl -sf -X DELETE "$url/sandboxes/$rsb" >/dev/null
    curl -sf -X DELETE "$url/snapshots/$id" >/dev/null
  done
  echo "| 1 GiB written: snapshot | $round | ${SNAP[OLD]} ms | ${SNAP[NEW]} ms | $(python3 -c "print(f'{${SNAP[OLD]}/max(${SNAP[NEW]},1):.1f}×')") |"
  echo "| 1 GiB written: restore | $round | ${REST[OLD]} ms | ${REST[NEW]} ms | $(python3 -c "print(f'{${REST[OLD]}/max(${REST[NEW]},1):.1f}×')") |"
  for which in OLD NEW; do
    url=${!which}
    sb=$(create "$url")
    read -r t id size < <(snapshot "$url" "$sb")
    SNAP[$which]=$t; SIZE[$which]=$size
    read -r t rsb < <(restore "$url" "$id")
    REST[$which]=$t
    curl -sf -X DELETE "$url/sandboxes/$sb" >/dev/null; curl -sf -X DELETE "$url/sandboxes/$rsb" >/dev/null
  done
  echo "| unchanged: snapshot ($((SIZE[OLD] / 1024)) KiB / $((SIZE[NEW] / 1024)) KiB) | $round | ${SNAP[OLD]} ms | ${SNAP[NEW]} ms | |"
  echo "| unchanged: restore | $round | ${REST[OLD]} ms | ${REST[NEW]} ms | |"
done
