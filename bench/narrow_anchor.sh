#!/usr/bin/env bash
# narrow_anchor.sh: the anchor shape (bench/offload_anchor.sh makes runs/anchor, f32, random
# weights) with experts and dense matrices stored f32, bf16, q8 and q4 (copies runs/anchor-TYPE,
# packed by the benchmark with the same clusters): resident decode, 2 threads, every format in
# one run; then each format under a memory cgroup of 57% of the f32 model (bench/memcap.sh),
# --ram-budget auto, exact mode. Needs root for the cgroup part.
# Results: bench/results/narrow_anchor.{json,md} and narrow_anchor_memcap.{json,md}.
# Usage: bash bench/narrow_anchor.sh   (after bench/offload_anchor.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/anchor
[ -s "$dir/cluster_manifest.json" ] || { echo "run bash bench/offload_anchor.sh first (it makes $dir)" >&2; exit 2; }
mkdir -p bench/results
# Resident decode per format (budget 100% of the f32 expert bytes holds every format's experts).
"$chronos" --threads 2 bench offload --model "$dir" --data data/prepared/pretrain.test.jsonl --dtype f32,bf16,q8,q4 \
  --prompts 4 --prompt-tokens 32 --gen-tokens 64 --budgets 100 --modes exact --no-eager \
  --json bench/results/narrow_anchor.json --markdown bench/results/narrow_anchor.md
# Under the cap: the whole process, page cache dropped, the budget sized from the limit.
model_bytes=$(stat -c %s "$dir/model.safetensors")
cap_mib=$(( model_bytes * 57 / 100 / 1024 / 1024 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prompt="The President of the United States said that the state of the Union"
for t in f32 bf16 q8 q4; do
  m="$dir"; [ "$t" = f32 ] || m="$dir-$t"
  bash bench/memcap.sh "$cap_mib" "$chronos" --threads 2 generate --model "$m" --prompt "$prompt" --mode exact \
    --ram-budget auto --max-tokens 64 --greedy --no-text --metrics-json "$work/$t.json" 2>"$work/$t.err" \
    || { cat "$work/$t.err" >&2; exit 1; }
  grep "memcap:" "$work/$t.err" | sed "s/^/$t: /"
done
/usr/bin/python3 - "$work" "$cap_mib" "$model_bytes" <<'PY'
import json, os, sys
work, cap, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = []
for t in ["f32", "bf16", "q8", "q4"]:
    m = json.load(open(os.path.join(work, t + ".json")))
    peak = [l for l in open(os.path.join(work, t + ".err")) if l.startswith("memcap:")][0].strip()
    runs.append({"dtype": t, "decode_tok_s": m["decode_tok_s"], "hit_rate": m["hit_rate"], "stall_ms_per_token": m["stall_ms_per_token"],
                 "bytes_read_per_token": m["bytes_read_per_token"], "expert_slots": m["expert_slots"],
                 "peak_rss_bytes": m["peak_rss_bytes"], "memcap": peak, "memory_split": m.get("memory_split")})
json.dump({"model": "runs/anchor", "model_bytes": model, "cap_mib": cap, "generated_tokens": 64, "runs": runs},
          open("bench/results/narrow_anchor_memcap.json", "w"), indent=2)
f32 = runs[0]["decode_tok_s"]
md = [f"Anchor (`runs/anchor`, {model / 1e6:.0f} MB f32) under a {cap} MiB memory cgroup (57% of the f32 model), "
      "experts and dense matrices in the named type, `--ram-budget auto`, exact mode, 64 greedy tokens, 2 threads.", "",
      "| weights | slots | decode tok/s | vs f32 | hit rate | stall ms/tok | read MB/tok | peak RSS MiB | cgroup |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
for r in runs:
    md.append(f"| {r['dtype']} | {r['expert_slots']} | {r['decode_tok_s']:.1f} | {r['decode_tok_s'] / f32:.2f}x | {r['hit_rate']:.3f} | "
              f"{r['stall_ms_per_token']:.1f} | {r['bytes_read_per_token'] / 1e6:.2f} | {r['peak_rss_bytes'] >> 20} | {r['memcap'].replace('memcap: ', '')} |")
open("bench/results/narrow_anchor_memcap.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
