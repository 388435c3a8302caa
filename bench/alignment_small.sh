#!/usr/bin/env bash
# alignment_small.sh: the alignment stages on `small` (scripts/main.sh trains it): SFT from the
# pretrained model, then DPO and ORPO from the SFT model, each with its default router KL anchor,
# and the same chain with every anchor weight 0 beside it. Every model is measured on the test
# splits, which no stage trains or validates on: the replies' cross-entropy (sft.test), the
# preference accuracy (preference.test: chosen reply's summed log-prob above the rejected one's),
# the router drift from the pretrained model (KL, mean over tokens and layers, on sft.test),
# switch rate and lookahead recall@k at t+1 (pretrain.test, first 40000 tokens).
# Results: bench/results/alignment_small.{json,md}.
# Usage: bash bench/alignment_small.sh   (after scripts/main.sh; STEPS_SFT, STEPS_PREF override)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
base=runs/small
p=data/prepared
sft_steps=${STEPS_SFT:-120}
pref_steps=${STEPS_PREF:-120}
[ -s "$base/model.safetensors" ] || { echo "run scripts/main.sh first (it makes $base)" >&2; exit 2; }
mkdir -p bench/results
export CHRONOS_PROGRESS=0
common="--threads 2 -q train"
for tag in anchored free; do
  kl_sft=""; kl_pref=""
  [ "$tag" = free ] && { kl_sft="--router-kl 0"; kl_pref="--router-kl 0"; }
  $chronos $common sft --from "$base" --data $p/sft.train.jsonl --out "runs/small-sft-$tag" --steps "$sft_steps" --batch-size 8 \
    --seq-len 256 --lr 0.0002 --warmup-steps 10 --eval-interval 50 $kl_sft
  $chronos $common dpo --from "runs/small-sft-$tag" --data $p/preference.train.jsonl --out "runs/small-dpo-$tag" --steps "$pref_steps" \
    --batch-size 8 --seq-len 128 --lr 0.0001 --warmup-steps 10 --eval-interval 50 $kl_pref
  $chronos $common orpo --from "runs/small-sft-$tag" --data $p/preference.train.jsonl --out "runs/small-orpo-$tag" --steps "$pref_steps" \
    --batch-size 8 --seq-len 128 --lr 0.0001 --warmup-steps 10 --eval-interval 50 $kl_pref
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Stage 1's step throughput beside the stages', in the same run: 20 steps of small's pretraining.
$chronos $common pretrain --config small --data $p/pretrain.train.jsonl --out "$work/pretrain" --steps 20 --eval-interval 0
for m in small small-sft-anchored small-dpo-anchored small-orpo-anchored small-sft-free small-dpo-free small-orpo-free; do
  $chronos --threads 2 -q eval responses --model "runs/$m" --reference "$base" --data $p/sft.test.jsonl --batches 32 --json > "$work/$m.sft.json"
  $chronos --threads 2 -q eval responses --model "runs/$m" --data $p/preference.test.jsonl --batches 44 --json > "$work/$m.pref.json"
  $chronos --threads 2 -q eval routing --model "runs/$m" --data $p/pretrain.test.jsonl --max-tokens 40000 --json > "$work/$m.routing.json"
done
/usr/bin/python3 - "$work" "$sft_steps" "$pref_steps" <<'PY'
import json, sys, datetime
work, sft_steps, pref_steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def tok_s(log):
    """Training tokens per second of a JSONL log, the first 5 steps (warm-up) left out."""
    rows = [r for r in (json.loads(l) for l in open(log)) if "tokens" in r and "seconds" in r]
    a = rows[min(5, len(rows) - 1)]
    after = [r for r in rows if r["step"] > a["step"]]
    return (rows[-1]["tokens"] - a["tokens"]) / sum(r["seconds"] for r in after) if after else float("nan")
res = {"date": datetime.date.today().isoformat(), "sft_steps": sft_steps, "pref_steps": pref_steps, "models": {},
       "pretrain_tok_s": tok_s(f"{work}/pretrain.log.jsonl")}
for m in ["small", "small-sft-anchored", "small-dpo-anchored", "small-orpo-anchored", "small-sft-free", "small-dpo-free", "small-orpo-free"]:
    s, p, r = (json.load(open(f"{work}/{m}.{k}.json")) for k in ("sft", "pref", "routing"))
    x = {"sft_test_reply_ce": s["val_response_ce"], "router_drift": s.get("val_router_drift"),
         "preference_accuracy": p["val_preference_accuracy"], "switch_rate": r["switch_rate_mean"],
         "lookahead_recall_t1": r["lookahead_recall"][0] if r["lookahead_recall"] else 0.0}
    if m != "small":
        x["train_tok_s"] = tok_s(f"runs/{m}.log.jsonl")
    res["models"][m] = x
json.dump(res, open("bench/results/alignment_small.json", "w"), indent=2)
base = res["models"]["small"]
md = ["| model | anchor | reply CE (sft.test) | vs pretrained | preference accuracy | router drift (KL) | switch rate | vs pretrained | lookahead recall t+1 | train tok/s |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
for m, x in res["models"].items():
    anchor = "-" if m == "small" else ("default" if m.endswith("anchored") else "0")
    md.append(f"| {m.replace('-anchored', '').replace('-free', '')} | {anchor} | {x['sft_test_reply_ce']:.4f} | {100 * (x['sft_test_reply_ce'] / base['sft_test_reply_ce'] - 1):+.1f}% "
              f"| {x['preference_accuracy']:.3f} | {x['router_drift']:.4f} | {x['switch_rate']:.4f} | {100 * (x['switch_rate'] / base['switch_rate'] - 1):+.1f}% "
              f"| {x['lookahead_recall_t1']:.4f} | {x.get('train_tok_s', float('nan')):.0f} |")
md.append("")
md.append(f"Stage 1 (pretraining `small`, 20 steps in the same run): {res['pretrain_tok_s']:.0f} tok/s.")
open("bench/results/alignment_small.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
