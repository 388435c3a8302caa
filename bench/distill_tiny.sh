#!/usr/bin/env bash
# distill_tiny.sh: distillation from `small` (scripts/main.sh trains it) into a fresh `tiny`
# student, against the same student trained on the cross-entropy alone (--alpha 0) for the same
# steps, batch, order and anchor; both measured on the test split (held-out CE at the trained
# window, all of pretrain.test). Results: bench/results/distill_tiny.{json,md}.
# Usage: bash bench/distill_tiny.sh   (STEPS overrides the 400 steps)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
steps=${STEPS:-400}
[ -s runs/small/model.safetensors ] || { echo "run scripts/main.sh first (it makes runs/small)" >&2; exit 2; }
mkdir -p bench/results
export CHRONOS_PROGRESS=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
$chronos -q init --config tiny --tokenizer data/tokenizer.model --seed 11 --out "$work/student"
for alpha in 0.5 0; do
  $chronos --threads 2 -q train distill --from "$work/student" --teacher runs/small --data data/prepared/pretrain.train.jsonl \
    --out "$work/d-$alpha" --steps "$steps" --batch-size 16 --seq-len 64 --lr 0.003 --warmup-steps 20 --alpha "$alpha" --eval-interval 0
  $chronos --threads 2 -q eval ppl --model "$work/d-$alpha" --data data/prepared/pretrain.test.jsonl --seq-len 64 --json > "$work/d-$alpha.json"
done
$chronos --threads 2 -q eval ppl --model runs/small --data data/prepared/pretrain.test.jsonl --seq-len 64 --json > "$work/teacher.json"
/usr/bin/python3 - "$work" "$steps" <<'PY'
import json, sys, datetime
work, steps = sys.argv[1], int(sys.argv[2])
r = {name: json.load(open(f"{work}/{f}.json")) for name, f in (("distilled", "d-0.5"), ("ce_only", "d-0"), ("teacher_small", "teacher"))}
res = {"date": datetime.date.today().isoformat(), "steps": steps, "batch": 16, "seq_len": 64, "alpha": 0.5, "temperature": 2.0, "results": r}
json.dump(res, open("bench/results/distill_tiny.json", "w"), indent=2)
md = ["| model | test tokens | held-out CE | perplexity |", "|---|---:|---:|---:|"]
for name, x in r.items():
    md.append(f"| {name} | {x['tokens']} | {x['loss']:.4f} | {x['ppl']:.1f} |")
open("bench/results/distill_tiny.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
