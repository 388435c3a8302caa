#!/usr/bin/env bash
# tune_tiny.sh: a 20-trial study with configs/tune-tiny.json (the tiny config's loss weights and
# lookahead depth, 300 steps per trial, objective held-out loss + switch rate on the validation
# split; trial 0 is the committed tiny config's own values), timed as a whole; then its best
# config against the committed tiny config, both trained
# for the trials' 300 steps with three seeds each and measured on the test split, which the
# study never saw. Results: bench/results/tune_tiny.{json,md} and tune_tiny_trials.txt.
# Usage: bash bench/tune_tiny.sh   (after scripts/setup.sh and data prepare; ~10 minutes on 2 cores)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
study=runs/tune-tiny
test_data=data/prepared/pretrain.test.jsonl
[ -s data/prepared/pretrain.train.jsonl ] || { echo "prepare the data first (scripts/main.sh or chronos data prepare)" >&2; exit 2; }
rm -rf "$study"
mkdir -p bench/results
export CHRONOS_PROGRESS=0
start=$(date +%s.%N)
"$chronos" tune --study "$study" --space configs/tune-tiny.json --trials 20 | tee "$study.log"
end=$(date +%s.%N)
"$chronos" tune --study "$study" --show | tee bench/results/tune_tiny_trials.txt
"$chronos" tune --study "$study" --apply-best --out "$study/best.json"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for cfg in tiny "$study/best.json"; do
  name=$([ "$cfg" = tiny ] && echo committed || echo tuned)
  for seed in 1 2 3; do
    "$chronos" -q train pretrain --config "$cfg" --data data/prepared/pretrain.train.jsonl --steps 300 --eval-interval 0 --seed "$seed" --out "$work/$name-$seed"
    "$chronos" -q eval ppl --model "$work/$name-$seed" --data "$test_data" --seq-len 64 --json > "$work/$name-$seed.ppl.json"
    "$chronos" -q eval routing --model "$work/$name-$seed" --data "$test_data" --seq-len 64 --json > "$work/$name-$seed.routing.json"
  done
done
/usr/bin/python3 - "$work" "$study/study.db" "$start" "$end" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'PY'
import json, sqlite3, statistics, sys, datetime
work, db, start, end, cores, cpu = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
con = sqlite3.connect(db)
states = [s for (s,) in con.execute("SELECT state FROM trials")]
best_n, best_v = con.execute("SELECT number, value FROM trials WHERE state = 'complete' ORDER BY value LIMIT 1").fetchone()
base_v = con.execute("SELECT value FROM trials WHERE number = 0").fetchone()[0]
res = {"date": datetime.date.today().isoformat(), "machine": f"{cpu}, {cores} cores",
       "command": "chronos tune --study runs/tune-tiny --space configs/tune-tiny.json --trials 20",
       "wall_s": end - start, "trials": len(states), "complete": states.count("complete"), "pruned": states.count("pruned"),
       "fail": states.count("fail"), "best_trial": best_n, "best_value_validation": best_v,
       "base_trial_value_validation": base_v, "test": {}}
for name in ("committed", "tuned"):
    rows = []
    for seed in (1, 2, 3):
        p = json.load(open(f"{work}/{name}-{seed}.ppl.json"))
        r = json.load(open(f"{work}/{name}-{seed}.routing.json"))
        rows.append({"seed": seed, "loss": p["loss"], "ppl": p["ppl"], "switch_rate": r["switch_rate_mean"],
                     "lookahead_recall_t1": r["lookahead_recall"][0] if r["lookahead_recall"] else 0.0,
                     "objective": p["loss"] + r["switch_rate_mean"]})
    res["test"][name] = {"runs": rows, **{k: statistics.mean(x[k] for x in rows) for k in ("loss", "ppl", "switch_rate", "lookahead_recall_t1", "objective")}}
json.dump(res, open("bench/results/tune_tiny.json", "w"), indent=2)
c, t = res["test"]["committed"], res["test"]["tuned"]
md = [f"Study: {res['trials']} trials ({res['complete']} complete, {res['pruned']} pruned by the median rule, {res['fail']} failed) "
      f"in {res['wall_s']:.0f} s wall on {res['machine']}; best trial {best_n}: validation objective {best_v:.4f}, "
      f"against {base_v:.4f} for trial 0 (the committed tiny config's values).", "",
      "Test split, 300 steps, mean of seeds 1-3:", "",
      "| config | loss + switch rate | held-out loss | perplexity | switch rate | lookahead recall t+1 |", "|---|---|---|---|---|---|"]
for name, x in (("committed tiny", c), ("tuned (best trial)", t)):
    md.append(f"| {name} | {x['objective']:.4f} | {x['loss']:.4f} | {x['ppl']:.1f} | {x['switch_rate']:.4f} | {x['lookahead_recall_t1']:.4f} |")
open("bench/results/tune_tiny.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
