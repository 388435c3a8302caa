#!/usr/bin/env bash
# narrow_anchor.sh: the anchor shape (bench/offload_anchor.sh makes runs/anchor, f32, random
# weights) with experts and dense matrices stored f32, bf16, q8 and q4 (copies runs/anchor-TYPE
# with the same clusters, packed by `bench offload --dtype` when missing):
#  - resident decode, 2 threads, 128 greedy tokens: the four formats in turn, five rounds; each
#    format's median, and the median over rounds of its ratio to f32 in the same round (this
#    machine's speed drifts by tens of percent between minutes, so a ratio is only taken
#    between runs seconds apart);
#  - each format under a memory cgroup of 57% of the f32 model (bench/memcap.sh, page cache
#    dropped, root), --ram-budget auto, exact mode, 64 greedy tokens.
# Results: bench/results/narrow_anchor.{json,md}.
# Usage: bash bench/narrow_anchor.sh   (after bench/offload_anchor.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
chronos=build/chronos
dir=runs/anchor
test_data=data/prepared/pretrain.test.jsonl
[ -s "$dir/cluster_manifest.json" ] || { echo "run bash bench/offload_anchor.sh first (it makes $dir)" >&2; exit 2; }
mkdir -p bench/results
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The copies (a tiny offload run packs each missing one).
"$chronos" -q --threads 2 bench offload --model "$dir" --data "$test_data" --dtype bf16,q8,q4 --prompts 1 --prompt-tokens 8 \
  --gen-tokens 2 --budgets 100 --modes exact --no-eager > /dev/null
prompt="The President of the United States said that the state of the Union"
for round in 1 2 3 4 5; do
  for t in f32 bf16 q8 q4; do
    m="$dir"; [ "$t" = f32 ] || m="$dir-$t"
    "$chronos" --threads 2 generate --model "$m" --prompt "$prompt" --mode resident --ram-budget 100% --max-tokens 128 --greedy \
      --no-text --metrics-json "$work/resident-$t-$round.json" 2>/dev/null
  done
done
model_bytes=$(stat -c %s "$dir/model.safetensors")
cap_mib=$(( model_bytes * 57 / 100 / 1024 / 1024 ))
for t in f32 bf16 q8 q4; do
  m="$dir"; [ "$t" = f32 ] || m="$dir-$t"
  bash bench/memcap.sh "$cap_mib" "$chronos" --threads 2 generate --model "$m" --prompt "$prompt" --mode exact \
    --ram-budget auto --max-tokens 64 --greedy --no-text --metrics-json "$work/cap-$t.json" 2>"$work/cap-$t.err" \
    || { cat "$work/cap-$t.err" >&2; exit 1; }
  grep "memcap:" "$work/cap-$t.err" | sed "s/^/$t: /"
done
/usr/bin/python3 - "$work" "$cap_mib" "$model_bytes" <<'PY'
import json, os, statistics, sys
work, cap, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
types = ["f32", "bf16", "q8", "q4"]
tok = {t: [json.load(open(os.path.join(work, f"resident-{t}-{r}.json")))["decode_tok_s"] for r in range(1, 6)] for t in types}
resident = []
for t in types:
    ratios = [tok[t][r] / tok["f32"][r] for r in range(5)]
    resident.append({"dtype": t, "decode_tok_s": tok[t], "median_tok_s": statistics.median(tok[t]), "median_ratio_to_f32": statistics.median(ratios),
                     "ratios_to_f32": ratios})
capped = []
for t in types:
    m = json.load(open(os.path.join(work, f"cap-{t}.json")))
    peak = [l for l in open(os.path.join(work, f"cap-{t}.err")) if l.startswith("memcap:")][0].strip()
    capped.append({"dtype": t, "decode_tok_s": m["decode_tok_s"], "hit_rate": m["hit_rate"], "stall_ms_per_token": m["stall_ms_per_token"],
                   "bytes_read_per_token": m["bytes_read_per_token"], "expert_slots": m["expert_slots"],
                   "peak_rss_bytes": m["peak_rss_bytes"], "memcap": peak, "memory_split": m.get("memory_split")})
json.dump({"model": "runs/anchor", "model_bytes": model, "threads": 2, "resident": resident, "cap_mib": cap, "capped": capped},
          open("bench/results/narrow_anchor.json", "w"), indent=2)
md = ["Anchor (`runs/anchor`, random weights), experts and dense matrices stored in the named type, 2 threads.", "",
      "Resident decode, 128 greedy tokens, five rounds of the four formats in turn:", "",
      "| weights | decode tok/s, each round | median | median ratio to f32 (same round) |", "|---|---|---:|---:|"]
for r in resident:
    md.append(f"| {r['dtype']} | {' / '.join(f'{x:.0f}' for x in r['decode_tok_s'])} | {r['median_tok_s']:.1f} | {r['median_ratio_to_f32']:.2f}x |")
md += ["", f"Under a {cap} MiB memory cgroup (57% of the {model / 1e6:.0f} MB f32 model), `--ram-budget auto`, exact mode, 64 greedy tokens:", "",
       "| weights | slots | decode tok/s | vs f32 | hit rate | stall ms/tok | read MB/tok | peak RSS MiB | cgroup |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
f32 = capped[0]["decode_tok_s"]
for r in capped:
    md.append(f"| {r['dtype']} | {r['expert_slots']} | {r['decode_tok_s']:.1f} | {r['decode_tok_s'] / f32:.2f}x | {r['hit_rate']:.3f} | "
              f"{r['stall_ms_per_token']:.1f} | {r['bytes_read_per_token'] / 1e6:.2f} | {r['peak_rss_bytes'] >> 20} | {r['memcap'].replace('memcap: ', '')} |")
open("bench/results/narrow_anchor.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
