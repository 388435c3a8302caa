#!/usr/bin/env bash
# The intent classifier beats the frequency baseline on held-out prompts of the real corpus.
# Pretrains `tiny` on real text, records a routing trace of prompts spread over the training
# split, trains the classifier (horizon 1: the experts of the first generated token) and compares
# its held-out recall with the most-used pairs' recall at the same budget (25% of the pairs).
# Usage: intent_real.sh CHRONOS TEST_DATA_DIR
set -euo pipefail
chronos=$1 data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
"$chronos" -q train pretrain --config tiny --steps 200 --data "$data/pretrain.small.jsonl" \
  --validation "$data/prepared/pretrain.validation.jsonl" --tokenizer "$data/tokenizer.model" --out "$work/m"
"$chronos" -q trace --model "$work/m" --data "$data/prepared/pretrain.train.jsonl" --out "$work/t.ctrc" \
  --max-sequences 1500 --stride 7 --prompt-tokens 32 --max-continuation 16
out=$("$chronos" -q train intent --model "$work/m" --trace "$work/t.ctrc" --horizon 1)
echo "$out"
intent=$(awk '/intent classifier:/ {print $4}' <<<"$out")
freq=$(awk '/frequency baseline:/ {print $4}' <<<"$out")
echo "held-out recall: intent $intent vs frequency $freq"
awk -v a="$intent" -v b="$freq" 'BEGIN { exit !(a > b) }' || { echo "FAIL: the intent classifier does not beat the frequency baseline"; exit 1; }
