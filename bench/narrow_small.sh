#!/usr/bin/env bash
# narrow_small.sh: `small` (scripts/main.sh trains it) with experts and dense matrices stored
# f32, bf16, q8 and q4 (copies runs/small-TYPE with the same clusters, made by the benchmark):
#  - quality on the held-out test split, computed by the runtime on the packed weights:
#    perplexity and KL from f32 by prefill over the whole split, and by decode (the path
#    generation takes, where q8/q4 also quantize activations) over its first 16384 tokens;
#  - offloaded decode at 25% and 10% of the f32 expert bytes, exact and lru: tok/s, bytes/token.
# Results: bench/results/narrow_small.{json,md} and narrow_small_quality.{json,md}.
# Usage: bash bench/narrow_small.sh   (after scripts/main.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/small
test_data=data/prepared/pretrain.test.jsonl
[ -s "$dir/cluster_manifest.json" ] || { echo "run scripts/main.sh first (it makes $dir)" >&2; exit 2; }
mkdir -p bench/results
"$chronos" --threads 2 bench offload --model "$dir" --data "$test_data" --dtype f32,bf16,q8,q4 \
  --prompts 8 --prompt-tokens 32 --gen-tokens 32 --budgets 25,10 --modes exact,lru --no-eager \
  --json bench/results/narrow_small.json --markdown bench/results/narrow_small.md
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for path in prefill decode; do
  max=0; [ "$path" = decode ] && max=16384
  "$chronos" --threads 2 -q eval ppl --engine runtime --path "$path" --max-tokens "$max" --model "$dir" --data "$test_data" --json > "$work/f32-$path.json"
  for t in bf16 q8 q4; do
    "$chronos" --threads 2 -q eval ppl --engine runtime --path "$path" --max-tokens "$max" --model "$dir-$t" --reference "$dir" \
      --data "$test_data" --json > "$work/$t-$path.json"
  done
done
/usr/bin/python3 - "$work" <<'PY'
import json, os, sys
work = sys.argv[1]
runs = [dict(json.load(open(os.path.join(work, f"{t}-{p}.json"))), dtype=t) for p in ["prefill", "decode"] for t in ["f32", "bf16", "q8", "q4"]]
json.dump({"model": "runs/small", "data": "data/prepared/pretrain.test.jsonl", "runs": runs},
          open("bench/results/narrow_small_quality.json", "w"), indent=2)
md = ["`small` on its held-out test split, computed by the runtime on the packed weights (experts and dense matrices in the named type); "
      "KL(f32 || type) per token and the share of positions with the same most likely token, against the f32 packs.", "",
      "| path | tokens | weights | perplexity | vs f32 | KL from f32 (nats/token) | same top-1 |", "|---|---:|---|---:|---:|---:|---:|"]
for p in ["prefill", "decode"]:
    base = [r for r in runs if r["path"] == p and r["dtype"] == "f32"][0]["ppl"]
    for r in [r for r in runs if r["path"] == p]:
        kl = "-" if r["dtype"] == "f32" else f"{r['kl']:.2e}"
        agree = "-" if r["dtype"] == "f32" else f"{r['top1_agree']:.4f}"
        md.append(f"| {p} | {r['tokens']} | {r['dtype']} | {r['ppl']:.3f} | {100 * (r['ppl'] / base - 1):+.2f}% | {kl} | {agree} |")
open("bench/results/narrow_small_quality.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
