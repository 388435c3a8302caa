#!/usr/bin/env bash
# offload_anchor_memcap.sh: the anchor shape (bench/offload_anchor.sh makes runs/anchor) decoding
# inside a memory cgroup of 57% of its f32 model size (bench/memcap.sh, page cache dropped
# before each run), at 15/20/25/35% of the experts in RAM and with --ram-budget auto, exact and
# lru: the whole process measured under the cap a smaller machine imposes. Needs root.
# Results: bench/results/offload_anchor_memcap.{json,md}.
# Usage: bash bench/offload_anchor_memcap.sh   (after bench/offload_anchor.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/anchor
[ -s "$dir/cluster_manifest.json" ] || { echo "run bash bench/offload_anchor.sh first (it makes $dir)" >&2; exit 2; }
model_bytes=$(stat -c %s "$dir/model.safetensors")
cap_mib=$(( model_bytes * 57 / 100 / 1024 / 1024 ))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prompt="The President of the United States said that the state of the Union"
for budget in 15% 20% 25% 35% auto; do
  for mode in exact lru; do
    name="${mode}-${budget%\%}"
    bash bench/memcap.sh "$cap_mib" "$chronos" --threads 2 generate --model "$dir" --prompt "$prompt" --mode "$mode" \
      --ram-budget "$budget" --max-tokens 64 --greedy --no-text --metrics-json "$work/$name.json" 2>"$work/$name.err" \
      || { cat "$work/$name.err" >&2; exit 1; }
    grep "memcap:" "$work/$name.err" | sed "s/^/$name: /"
  done
done
mkdir -p bench/results
/usr/bin/python3 - "$work" "$cap_mib" "$model_bytes" <<'PY'
import glob, json, os, sys
work, cap, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
runs = []
for f in sorted(glob.glob(os.path.join(work, "*.json"))):
    m = json.load(open(f))
    mode, budget = os.path.basename(f)[:-5].split("-")
    peak = [l for l in open(f[:-5] + ".err") if l.startswith("memcap:")][0].strip()
    runs.append({"mode": mode, "budget": budget, "decode_tok_s": m["decode_tok_s"], "hit_rate": m["hit_rate"],
                 "stall_ms_per_token": m["stall_ms_per_token"], "bytes_read_per_token": m["bytes_read_per_token"],
                 "expert_slots": m["expert_slots"], "peak_rss_bytes": m["peak_rss_bytes"], "memcap": peak,
                 "memory_split": m.get("memory_split")})
order = {"15": 0, "20": 1, "25": 2, "35": 3, "auto": 4}
runs.sort(key=lambda r: (order[r["budget"]], r["mode"]))
out = {"model": "runs/anchor", "model_bytes": model, "cap_mib": cap, "generated_tokens": 64, "runs": runs}
json.dump(out, open("bench/results/offload_anchor_memcap.json", "w"), indent=2)
md = [f"Anchor (`runs/anchor`, {model / 1e6:.0f} MB f32) under a {cap} MiB memory cgroup (57% of the model), 64 greedy tokens, 2 threads.", "",
      "| experts in RAM | mode | slots | decode tok/s | hit rate | stall ms/tok | read MB/tok | peak RSS MiB | cgroup |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
for r in runs:
    b = r["budget"] + ("%" if r["budget"] != "auto" else "")
    md.append(f"| {b} | {r['mode']} | {r['expert_slots']} | {r['decode_tok_s']:.1f} | {r['hit_rate']:.3f} | {r['stall_ms_per_token']:.1f} | "
              f"{r['bytes_read_per_token'] / 1e6:.1f} | {r['peak_rss_bytes'] >> 20} | {r['memcap'].replace('memcap: ', '')} |")
open("bench/results/offload_anchor_memcap.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
