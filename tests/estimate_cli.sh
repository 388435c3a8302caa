#!/usr/bin/env bash
# `chronos estimate` against what exists: its parameter count per group equals `inspect` of a
# checkpoint `chronos init` writes from the same config (grouped here by tensor name,
# independently of the C++), and its predicted peak RSS is within 10% of the peak RSS that
# `chronos generate` measures on that checkpoint, packed, at the same RAM budget (tiny and
# small, experts f32 and q8).
# Usage: estimate_cli.sh CHRONOS TEST_DATA_DIR
set -euo pipefail
chronos=$1 data=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CHRONOS_PROGRESS=0
tok="$data/tokenizer.model"
fail=0
for spec in "tiny f32 50%" "small f32 25%" "small q8 25%"; do
  read -r config dtype budget <<<"$spec"
  m="$work/$config-$dtype"
  "$chronos" -q init --config "$config" --tokenizer "$tok" --seed 1 --out "$m"
  "$chronos" -q pack --model "$m" --dtype "$dtype"
  "$chronos" --threads 2 estimate --config "$config" --tokenizer "$tok" --dtype "$dtype" --ram-budget "$budget" --json > "$work/est.json"
  "$chronos" inspect "$m" --json > "$work/inspect.json"
  "$chronos" --threads 2 generate --model "$m" --prompt "The committee reported that" --greedy --max-tokens 16 --ram-budget "$budget" \
    --no-text --metrics-json "$work/gen.json" 2> /dev/null
  /usr/bin/python3 - "$work/est.json" "$work/inspect.json" "$work/gen.json" "$spec" <<'PY' || fail=1
import json, sys, re
est, ins, gen, spec = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), json.load(open(sys.argv[3])), sys.argv[4]
def group(name):
    if "embed_tokens" in name: return "embeddings"
    if name.startswith("lm_head"): return "lm_head"
    if name.startswith("lookahead"): return "lookahead"
    if ".mlp.experts." in name: return "experts"
    if ".mlp.shared_experts." in name: return "shared_experts"
    if ".mlp.gate." in name: return "router"
    if ".self_attn." in name: return "attention"
    if "norm" in name: return "norms"
    return "other"
groups = {}
for t in ins["tensors"]:
    n = 1
    for d in t["shape"]: n *= d
    groups[group(t["name"])] = groups.get(group(t["name"]), 0) + n
eg = dict(est["params"]["groups"])
eg["attention"] = sum(v for k, v in eg.items() if k.startswith("attention_"))
ok = True
for k, v in groups.items():
    if eg.get(k) != v:
        print(f"FAIL {spec}: {k} has {v} parameters in the checkpoint, {eg.get(k)} estimated"); ok = False
if est["params"]["total"] != ins["total"]["parameters"]:
    print(f"FAIL {spec}: total {ins['total']['parameters']} vs {est['params']['total']}"); ok = False
if est["expert_slots"] != gen["expert_slots"]:
    print(f"FAIL {spec}: {gen['expert_slots']} slots in the run, {est['expert_slots']} estimated"); ok = False
pred, meas = est["memory"]["predicted_peak_rss_bytes"], gen["peak_rss_bytes"]
print(f"{spec}: parameters {ins['total']['parameters']}, slots {gen['expert_slots']}, peak RSS predicted {pred / 2**20:.1f} MiB, measured {meas / 2**20:.1f} MiB ({100 * (pred / meas - 1):+.1f}%)")
if abs(pred / meas - 1) > 0.10:
    print(f"FAIL {spec}: predicted peak RSS off by more than 10%"); ok = False
sys.exit(0 if ok else 1)
PY
done
# Bad input: an unknown config, a budget below one layer's top-k.
if out=$("$chronos" estimate --config nope --tokenizer "$tok" 2>&1); then echo "FAIL: unknown config accepted"; fail=1; fi
grep -q "chronos: error:" <<<"$out" || { echo "FAIL: $out"; fail=1; }
if out=$("$chronos" estimate --config tiny --tokenizer "$tok" --ram-budget 1K 2>&1); then echo "FAIL: budget 1K accepted"; fail=1; fi
grep -q "top-" <<<"$out" || { echo "FAIL: $out"; fail=1; }
exit $fail
