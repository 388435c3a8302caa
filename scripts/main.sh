#!/usr/bin/env bash
# main.sh: README command 1 — set up, build, and run the main job on the embedded default data:
#   1. prepare the datasets from the real corpora, train the tokenizer, print their statistics;
#   2. pretrain the `small` Chronos model and the plain-MoE baseline on the same data and steps,
#      then give the Chronos lookahead head more steps on the frozen model;
#   3. print the side-by-side table (held-out perplexity, switch rate, lookahead recall, speed).
#   4. trace, train the intent classifier, pack the experts; generate from three prompts with a
#      quarter of the experts in RAM (sampled); the offload benchmark, and once more with every
#      expert read slowed to 30 ms (a simulated slow disk) to show what prefetching hides.
#   5. the alignment pipeline on `small` (configs/pipeline-small.json: SFT, DPO, ORPO, GRPO,
#      distillation into `tiny`) and its table of held-out figures per stage.
# Reruns reuse finished steps (checkpoints resume; a finished run is not repeated).
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

echo
echo "== pretraining: small Chronos and the plain-MoE baseline, same data and steps =="
mkdir -p runs
for variant in chronos baseline; do
  out=runs/small; flag=""
  if [ "$variant" = baseline ]; then out=runs/small-baseline; flag="--baseline"; fi
  resume=""
  [ -f "$out/trainer_state.json" ] && resume="--resume"
  "$chronos" train pretrain --config small $flag $resume --data data/prepared/pretrain.train.jsonl \
    --tokenizer data/tokenizer.model --out "$out"
done
echo
echo "== lookahead head: 600 more steps for the head alone on the frozen model (nothing else changes) =="
if ! grep -q '"lookahead_fit"' runs/small/trainer_state.json; then
  "$chronos" train lookahead --model runs/small --data data/prepared/pretrain.train.jsonl \
    --log runs/small.lookahead.log.jsonl
fi
echo
echo "== Chronos vs baseline (held-out: data/prepared/pretrain.test.jsonl) =="
mkdir -p bench/results
"$chronos" bench pretrain-report --chronos runs/small --baseline runs/small-baseline \
  --data data/prepared/pretrain.test.jsonl --json bench/results/pretrain_small.json \
  --markdown bench/results/pretrain_small.md

echo
echo "== routing trace, intent classifier and cluster packs (runs/small) =="
if [ ! -s runs/small/cluster_manifest.json ] || [ runs/small/model.safetensors -nt runs/small/cluster_manifest.json ]; then
  "$chronos" trace --model runs/small --data data/prepared/pretrain.train.jsonl --out runs/small.trace.ctrc \
    --max-sequences 1500 --stride 7 --prompt-tokens 32 --max-continuation 64
  "$chronos" train intent --model runs/small --trace runs/small.trace.ctrc
  "$chronos" pack --model runs/small --trace runs/small.trace.ctrc --max-cluster-mb 4
fi

echo
echo "== offloaded generation: 25% of the experts in RAM, exact mode, sampled (temperature 0.7, top-p 0.9, penalty 1.3) =="
# A fixed seed per prompt, so that reruns print the same text; the first run's metrics are kept.
seed=1
metrics="--metrics-json bench/results/generate_small.json"
for prompt in "The President of the United States said that" \
              "And God said unto Moses," \
              "The committee reported that the railroad"; do
  "$chronos" generate --model runs/small --prompt "$prompt" --mode exact --ram-budget 25% --max-tokens 48 --seed $seed $metrics
  seed=$((seed + 1)); metrics=""
  echo
done

echo
echo "== offload benchmark (held-out prompts; resident vs libtorch, exact/soft/lru at 100/50/25/10%, and exact/soft with a perfect predictor) =="
"$chronos" bench offload --model runs/small --data data/prepared/pretrain.test.jsonl --oracle \
  --json bench/results/offload_small.json --markdown bench/results/offload_small.md

echo
echo "== offload on a simulated slow disk: every expert read takes 30 ms (exact vs lru vs soft at 25%, and with a perfect predictor: stall and pipeline slack) =="
"$chronos" bench offload --model runs/small --data data/prepared/pretrain.test.jsonl --sim-read-ms 30 --budgets 25 --oracle \
  --modes exact,soft,lru --no-eager --json bench/results/offload_small_sim30.json --markdown bench/results/offload_small_sim30.md

echo
echo "== alignment pipeline on small: SFT, DPO, ORPO, GRPO, distillation into tiny (stage 1 is runs/small; docs/training.md) =="
"$chronos" pipeline --config configs/pipeline-small.json
