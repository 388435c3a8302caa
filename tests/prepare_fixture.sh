#!/usr/bin/env bash
# Test fixture: prepares the real datasets and a small tokenizer into the build tree.
# Usage: prepare_fixture.sh CHRONOS RAW_DIR OUT_DIR
set -euo pipefail
chronos=$1 raw=$2 out=$3
mkdir -p "$out"
"$chronos" data prepare --raw "$raw" --out "$out/prepared"
# Every 8th record of the training split (all three corpora) for the trainer tests.
awk 'NR % 8 == 1' "$out/prepared/pretrain.train.jsonl" > "$out/pretrain.small.jsonl"
"$chronos" tokenizer train --input "$out/prepared/pretrain.train.jsonl" --vocab-size 2000 \
  --max-sentences 60000 --out "$out/tokenizer.model"
