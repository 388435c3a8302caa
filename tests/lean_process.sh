#!/usr/bin/env bash
# The inference process is lean: `chronos generate` (and `chronos info`) map no libtorch, c10,
# gloo, protobuf or igraph, read from the process's own /proc/self/maps (generate's
# "mapped_libraries" metric); the commands that need them still work through `chronos`, which
# hands them to chronos-train.
# Usage: lean_process.sh CHRONOS TEST_DATA_DIR
set -euo pipefail
chronos=$1 data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
forbidden='libtorch|libc10|libgloo|protobuf|igraph'

# Forwarded to chronos-train: init and pack work as before.
# Each step's messages are kept and shown if it fails, so a failure says which step and why.
run() { "$@" >"$work/out.txt" 2>&1 || { echo "FAIL: $*"; cat "$work/out.txt"; exit 1; }; }
run "$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --out "$work/m" --seed 2
run "$chronos" -q pack --model "$work/m"
run "$chronos" generate --model "$work/m" --prompt "The state of the Union" --max-tokens 4 --ram-budget 50% --seed 1 \
  --metrics-json "$work/g.json"
libs=$(/usr/bin/python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["mapped_libraries"]))' "$work/g.json")
[ -n "$libs" ] || { echo "FAIL: generate reported no mapped libraries"; exit 1; }
echo "generate mapped $(wc -l <<<"$libs") shared objects"
if grep -E "$forbidden" <<<"$libs"; then
  echo "FAIL: the inference process mapped the libraries above"; exit 1
fi
grep -q "openblas" <<<"$libs" || { echo "FAIL: the maps list misses OpenBLAS, so it would miss anything"; exit 1; }
info=$("$chronos" info)
grep -E "shared libraries mapped|peak RSS" <<<"$info"
# chronos-train is where libtorch lives (the check above would see it if generate ran there).
train_libs=$(ldd "$(dirname "$chronos")/chronos-train")
grep -qE "libtorch|libc10" <<<"$train_libs" || { echo "FAIL: chronos-train links no libtorch?"; exit 1; }
echo "lean process: ok"
