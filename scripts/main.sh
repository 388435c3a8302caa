#!/usr/bin/env bash
# main.sh: README command 1 — set up, build, and run the main job on the embedded default data:
# prepare the datasets, train the tokenizer, print dataset and tokenizer statistics.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
chronos=build/chronos
"$chronos" info
"$chronos" data prepare --raw data/raw --out data/prepared
if [ ! -s data/tokenizer.model ] || [ data/prepared/pretrain.train.jsonl -nt data/tokenizer.model ]; then
  "$chronos" tokenizer train --input data/prepared/pretrain.train.jsonl --vocab-size 8000 --out data/tokenizer.model
fi
echo
echo "== dataset statistics (tokens with data/tokenizer.model) =="
"$chronos" data stats --data data/prepared --tokenizer data/tokenizer.model
echo
echo "== tokenizer round trip =="
sample=$'State of the Union:\tthe "quick" test \xe2\x96\x81 1790\xe2\x80\x932021'
ids=$("$chronos" tokenizer encode --model data/tokenizer.model --text "$sample")
back=$("$chronos" tokenizer decode --model data/tokenizer.model --ids "$ids")
echo "text:   $sample"
echo "ids:    $ids"
echo "tokens: $(wc -w <<<"$ids") for $(printf '%s' "$sample" | wc -c) bytes"
[ "$back" == "$sample" ] && echo "decode: identical" || { echo "decode: DIFFERS: $back"; exit 1; }
