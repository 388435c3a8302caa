#!/usr/bin/env bash
# pipeline_small.sh: stages 1-6 on `small` with configs/pipeline-small.json (default router KL
# anchors), and the same chain with every anchor weight 0 beside it (the file rewritten with
# "router-kl": 0 in every stage, into runs/pipeline-small-free). Stage 1 is runs/small in both
# (scripts/main.sh pretrains it). Figures on the test splits (the file's "eval"), checked
# against the targets of docs/benchmarks.md. Results: bench/results/pipeline_small.{json,md}.
# Usage: bash bench/pipeline_small.sh   (after scripts/main.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
[ -s runs/small/model.safetensors ] || { echo "run scripts/main.sh first (it makes runs/small)" >&2; exit 2; }
mkdir -p bench/results
export CHRONOS_PROGRESS=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 - configs/pipeline-small.json "$work/free.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
p["name"], p["out"] = "pipeline-small-free", "runs/pipeline-small-free"
for s in p["stages"]:
    if s["stage"] != "pretrain":
        s.setdefault("options", {})["router-kl"] = 0
json.dump(p, open(sys.argv[2], "w"), indent=1)
PY
$chronos --threads 2 pipeline --config configs/pipeline-small.json
$chronos --threads 2 pipeline --config "$work/free.json"
# Stage 1's step throughput in the same run: 20 steps of small's pretraining.
$chronos --threads 2 -q train pretrain --config small --data data/prepared/pretrain.train.jsonl --out "$work/pretrain" --steps 20 --eval-interval 0
/usr/bin/python3 - runs/pipeline-small/pipeline.json runs/pipeline-small-free/pipeline.json "$(lscpu | sed -n 's/^Model name: *//p')" "$work/pretrain.log.jsonl" <<'PY'
import json, sys, datetime
anchored, free = (json.load(open(f)) for f in sys.argv[1:3])
rows = [json.loads(l) for l in open(sys.argv[4])][5:]
stage1_tok_s = (rows[-1]["tokens"] - rows[0]["tokens"]) / sum(r["seconds"] for r in rows[1:])
rows = {r["name"]: r for r in anchored["stages"]}
frows = {r["name"]: r for r in free["stages"]}
pre, sft, dpo, orpo, grpo = (rows[k] for k in ("pretrain", "sft", "dpo", "orpo", "grpo"))
def met(ok): return "met" if ok else "NOT met"
targets = [
    ("SFT held-out reply CE >= 10% below the pretrained model's", f"{100 * (sft['held_out_ce'] / pre['held_out_ce'] - 1):+.1f}%",
     met(sft["held_out_ce"] <= 0.9 * pre["held_out_ce"])),
    ("DPO preference accuracy >= pretrained + 10 points and > SFT", f"{dpo['preference_accuracy']:.3f} (pretrained {pre['preference_accuracy']:.3f}, SFT {sft['preference_accuracy']:.3f})",
     met(dpo["preference_accuracy"] >= pre["preference_accuracy"] + 0.10 and dpo["preference_accuracy"] > sft["preference_accuracy"])),
    ("ORPO preference accuracy >= pretrained + 10 points and > SFT", f"{orpo['preference_accuracy']:.3f}",
     met(orpo["preference_accuracy"] >= pre["preference_accuracy"] + 0.10 and orpo["preference_accuracy"] > sft["preference_accuracy"])),
    ("GRPO greedy exact match >= SFT + 5 points", f"{grpo['exact_match']:.3f} (SFT {sft['exact_match']:.3f})",
     met(grpo["exact_match"] >= sft["exact_match"] + 0.05)),
    ("end of chain (GRPO): switch rate within +10% of the pretrained model's", f"{100 * (grpo['switch_rate'] / pre['switch_rate'] - 1):+.1f}% (anchor 0: {100 * (frows['grpo']['switch_rate'] / pre['switch_rate'] - 1):+.1f}%)",
     met(grpo["switch_rate"] <= 1.1 * pre["switch_rate"])),
    ("end of chain (GRPO): lookahead recall@1 t+1 within 0.03 of the pretrained model's", f"{grpo['lookahead_recall_t1'] - pre['lookahead_recall_t1']:+.4f} (anchor 0: {frows['grpo']['lookahead_recall_t1'] - pre['lookahead_recall_t1']:+.4f})",
     met(abs(grpo["lookahead_recall_t1"] - pre["lookahead_recall_t1"]) <= 0.03)),
]
res = {"date": datetime.date.today().isoformat(), "machine": sys.argv[3], "stage1_tok_s": stage1_tok_s, "anchored": anchored, "anchor_0": free,
       "targets": [{"target": t, "measured": m, "status": s} for t, m, s in targets]}
json.dump(res, open("bench/results/pipeline_small.json", "w"), indent=2)
def f(r, k, fmt):
    v = r.get(k)
    return "-" if v is None else format(v, fmt)
md = ["| stage | anchor | objective | reply CE (sft.test) | preference accuracy | exact match | router drift (KL) | switch rate | lookahead recall t+1 | train tok/s | rollout tok/s |",
      "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for label, t in (("default", anchored), ("0", free)):
    for r in t["stages"]:
        if label == "0" and r["stage"] == "pretrain":
            continue
        md.append(f"| {r['name']} | {'-' if r['stage'] == 'pretrain' else label} | {f(r, 'objective', '.4f')} | {f(r, 'held_out_ce', '.4f')} | {f(r, 'preference_accuracy', '.3f')} "
                  f"| {f(r, 'exact_match', '.3f')} | {f(r, 'router_drift', '.4f')} | {f(r, 'switch_rate', '.4f')} | {f(r, 'lookahead_recall_t1', '.4f')} "
                  f"| {f(r, 'train_tok_s', '.0f')} | {f(r, 'rollout_tok_s', '.0f')} |")
md += ["", f"Stage 1 (pretraining `small`, 20 steps in the same run, warm-up steps left out): {stage1_tok_s:.0f} tok/s."]
md += ["", "| target | measured | status |", "|---|---|---|"] + [f"| {t} | {m} | {s} |" for t, m, s in targets]
open("bench/results/pipeline_small.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
