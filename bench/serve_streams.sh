#!/usr/bin/env bash
# serve_streams.sh: `chronos serve` with continuous batching on `small` (scripts/main.sh trains
# it), experts at 25% and 50% of their bytes in exact mode, and resident for the compute-bound
# ceiling: 1, 4 and 8 concurrent streaming clients,
# each sending ROUNDS requests one after the other (prompts from the held-out test split, 64
# tokens, sampled with a seed). Per stream count: aggregate tok/s (tokens generated / wall time,
# prefill included), expert bytes read per generated token and the mean batch (from /metrics),
# time to first token and the gap between streamed chunks (p50/p99; a chunk holds one token
# unless the text was held back at a partial character or a possible stop sequence).
# Results: bench/results/serve_streams.{json,md}.
# Usage: bash bench/serve_streams.sh [ROUNDS]   (after scripts/main.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4}
chronos=build/chronos
dir=runs/small
test_data=data/prepared/pretrain.test.jsonl
[ -s "$dir/cluster_manifest.json" ] || { echo "run scripts/main.sh first (it makes $dir)" >&2; exit 2; }
mkdir -p bench/results
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
source tests/serve_start.sh
/usr/bin/python3 - "$test_data" > "$work/prompts.json" <<'PY'
import json, sys
prompts = []
for line in open(sys.argv[1]):
    words = json.loads(line)["text"].split()
    if len(words) >= 24:
        prompts.append(" ".join(words[:24]))
    if len(prompts) == 64:
        break
json.dump(prompts, sys.stdout)
PY
for setting in "exact 25%" "exact 50%" "resident 100%"; do
  read -r mode budget <<< "$setting"
  serve_start "$work" "$chronos" --model "$dir" --mode "$mode" --ram-budget "$budget" --max-batch 8 --max-connections 16 --request-timeout 600
  echo "== $mode, $budget"
  node bench/serve_client.cjs "http://127.0.0.1:$port" "$work/prompts.json" "$rounds" 64 ${STREAMS:-1 4 8} |
    sed "s/^{/{\"mode\": \"$mode\", \"ram_budget\": \"$budget\", /" | tee -a "$work/rows.jsonl"
  kill -TERM "$pid"; wait "$pid" || true; pid=""
done
/usr/bin/python3 - "$work/rows.jsonl" "$rounds" "$(lscpu | sed -n 's/^Model name: *//p')" "$(nproc)" <<'PY'
import json, sys, time
rows = [json.loads(l) for l in open(sys.argv[1])]
rounds, cpu, cores = int(sys.argv[2]), sys.argv[3], sys.argv[4]
res = {"model": "runs/small", "max_batch": 8, "rounds_per_stream": rounds, "max_tokens": 64,
       "machine": f"{cpu}, {cores} cores", "date": time.strftime("%Y-%m-%d"), "rows": rows}
json.dump(res, open("bench/results/serve_streams.json", "w"), indent=2)
md = [f"`chronos serve` on `small`, --max-batch 8; each stream sends {rounds} streaming requests of 64 tokens (sampled, seeded) one "
      f"after another. Machine: {cpu}, {cores} cores; {res['date']}.", "",
      "| mode | experts in RAM | streams | requests | tokens | aggregate tok/s | vs 1 stream | expert bytes read / token | mean batch | hit rate | TTFT p50 / p99 ms | chunk gap p50 / p99 ms |",
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    one = [o for o in rows if o["mode"] == r["mode"] and o["ram_budget"] == r["ram_budget"] and o["streams"] == 1][0]["tok_s"]
    md.append(f"| {r['mode']} | {r['ram_budget']} | {r['streams']} | {r['requests']} | {r['tokens']} | {r['tok_s']:.1f} | {r['tok_s'] / one:.2f}x | "
              f"{r['bytes_per_token'] / 1024:.1f} KiB | {r['mean_batch']:.2f} | {r['hit_rate']:.3f} | {r['ttft_p50_ms']:.0f} / {r['ttft_p99_ms']:.0f} | "
              f"{r['itl_p50_ms']:.1f} / {r['itl_p99_ms']:.1f} |")
open("bench/results/serve_streams.md", "w").write("\n".join(md) + "\n")
print("\n".join(md))
PY
