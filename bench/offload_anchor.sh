#!/usr/bin/env bash
# offload_anchor.sh: the anchor shape (configs/anchor-plain-moe.json: hidden 512, 8 layers,
# 8 heads / 4 KV heads, 8 experts top-2, expert FFN 1664, vocab 6400, f32, random weights) on
# the native runtime: resident decode and offloaded decode at 57% and 50% of the experts in RAM.
# The shape has no lookahead head and no intent classifier (nobody trains it here), so exact mode
# runs without predictions. Results: bench/results/offload_anchor.{json,md}.
# Usage: bash bench/offload_anchor.sh   (after scripts/main.sh has prepared data and built)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/anchor
if [ ! -s "$dir/cluster_manifest.json" ]; then
  [ -s runs/anchor-tokenizer.model ] || "$chronos" tokenizer train --input data/prepared/pretrain.train.jsonl \
    --vocab-size 6400 --out runs/anchor-tokenizer.model
  "$chronos" init --config anchor-plain-moe --tokenizer runs/anchor-tokenizer.model --out "$dir" --seed 1
  "$chronos" pack --model "$dir"
fi
mkdir -p bench/results
"$chronos" --threads 2 bench offload --model "$dir" --data data/prepared/pretrain.test.jsonl \
  --prompts 4 --prompt-tokens 32 --gen-tokens 32 --budgets 100,57,50 --modes exact,lru \
  --json bench/results/offload_anchor.json --markdown bench/results/offload_anchor.md
