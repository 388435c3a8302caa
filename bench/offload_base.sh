#!/usr/bin/env bash
# offload_base.sh: the `base` config (about 100 M parameters: MLA and sliding-window layers,
# lookahead head) with random weights on the native runtime — resident vs libtorch eager, and
# exact / soft / lru at 100/50/25% of the experts in RAM. Nobody trains `base` here, so its
# lookahead head is untrained and it has no intent classifier: this measures the engine, not the
# predictors; the --oracle rows show what the engine does with perfect predictions.
# Results: bench/results/offload_base.{json,md}.
# Usage: bash bench/offload_base.sh   (after scripts/main.sh has prepared data and built)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/base-random
if [ ! -s "$dir/cluster_manifest.json" ]; then
  "$chronos" init --config base --tokenizer data/tokenizer.model --out "$dir" --seed 1
  "$chronos" pack --model "$dir"
fi
mkdir -p bench/results
"$chronos" --threads 2 bench offload --model "$dir" --data data/prepared/pretrain.test.jsonl \
  --prompts 4 --prompt-tokens 32 --gen-tokens 24 --budgets 100,50,25 --modes exact,soft,lru --oracle \
  --json bench/results/offload_base.json --markdown bench/results/offload_base.md
