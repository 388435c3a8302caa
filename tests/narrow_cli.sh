#!/usr/bin/env bash
# Narrow weights through the commands: pack experts q4 and the dense matrices q8 (both files
# read by an independent safetensors reader), the runtime's perplexity on f32 packs against
# libtorch's, the KL of a q4 pack from the f32 one, and bench offload comparing formats.
# Usage: narrow_cli.sh CHRONOS TEST_DATA_DIR SOURCE_DIR
set -euo pipefail
chronos=$1 data=$2 src=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
test_data="$data/prepared/pretrain.test.jsonl"
"$chronos" -q init --config tiny --tokenizer "$data/tokenizer.model" --seed 5 --out "$work/m"
fail=0
if out=$("$chronos" eval ppl --engine runtime --model "$work/m" --data "$test_data" 2>&1); then echo "FAIL: runtime eval without packs"; fail=1; fi
grep -q "chronos pack" <<<"$out" || { echo "FAIL: no-pack message: $out"; fail=1; }
"$chronos" -q pack --model "$work/m"

# f32 packs: the runtime's perplexity equals libtorch's on the same windows. The runtime's
# logits agree with libtorch's to the parity tests' bound (below 1e-3 for models of this size),
# so the mean log-probability differs by at most twice that.
rt=$("$chronos" -q eval ppl --engine runtime --path prefill --model "$work/m" --data "$test_data" --max-tokens 4096 --json)
th=$("$chronos" -q eval ppl --model "$work/m" --data "$test_data" --max-tokens 4096 --json)
/usr/bin/python3 - "$rt" "$th" <<'PY' || fail=1
import json, sys
rt, th = json.loads(sys.argv[1]), json.loads(sys.argv[2])
assert rt["engine"] == "runtime" and rt["experts"] == "f32" and rt["dense"] == "f32", rt
# torch scores every window it reads; the runtime the windows within --max-tokens (the same ones, in order)
assert rt["tokens"] <= th["tokens"], (rt, th)
if rt["tokens"] == th["tokens"]:
    assert abs(rt["loss"] - th["loss"]) <= 2e-3, ("runtime and libtorch disagree", rt, th)
print(f"runtime ppl {rt['ppl']:.3f} over {rt['tokens']} tokens, libtorch {th['ppl']:.3f} over {th['tokens']}")
PY

# A q4 / q8-dense copy: valid safetensors, verified checksums, and its distance from f32.
mkdir "$work/q"
cp "$work"/m/{config.json,model.safetensors,tokenizer.model} "$work/q/"
"$chronos" -q pack --model "$work/q" --dtype q4 --dense-dtype q8 --verify
/usr/bin/python3 "$src/tests/reference/check_safetensors.py" "$work"/q/packs/*/*.ctsr
grep -q '"dtype": "q4"' "$work/q/cluster_manifest.json" || { echo "FAIL: manifest dtype"; fail=1; }
q=$("$chronos" -q eval ppl --engine runtime --model "$work/q" --reference "$work/m" --data "$test_data" --max-tokens 512 --json)
/usr/bin/python3 - "$q" <<'PY' || fail=1
import json, math, sys
q = json.loads(sys.argv[1])
assert q["experts"] == "q4" and q["dense"] == "q8" and q["path"] == "decode", q
# Quantization moves the distribution: KL is positive (and finite), the perplexity finite.
assert q["kl"] > 0 and math.isfinite(q["kl"]) and math.isfinite(q["ppl"]), q
assert 0 <= q["top1_agree"] <= 1, q
print(f"q4/q8: ppl {q['ppl']:.3f}, KL from f32 {q['kl']:.5f}, same top-1 {q['top1_agree']:.3f}")
PY

# bench offload across formats: one copy per type beside the model, budgets in f32 bytes.
"$chronos" -q bench offload --model "$work/m" --data "$test_data" --dtype f32,q8 --budgets 100,25 --modes exact \
  --prompts 2 --prompt-tokens 8 --gen-tokens 4 --no-eager --json "$work/cmp.json" > "$work/cmp.md"
[ -s "$work/m-q8/cluster_manifest.json" ] || { echo "FAIL: no q8 copy beside the model"; fail=1; }
[ ! -e "$work/m-f32" ] || { echo "FAIL: an f32 copy of an f32 model"; fail=1; }
/usr/bin/python3 - "$work/cmp.json" <<'PY' || fail=1
import json, sys
j = json.load(open(sys.argv[1]))
f32, q8 = j["formats"]
assert (f32["experts_dtype"], q8["experts_dtype"], q8["dense_dtype"]) == ("f32", "q8", "q8"), j
assert f32["budget_base_bytes"] == q8["budget_base_bytes"] == j["budget_base_bytes"] == f32["expert_bytes_total"]
assert q8["expert_bytes_total"] < f32["expert_bytes_total"] / 3, "q8 experts take 8.5 of 32 bits"
# the same bytes hold more q8 experts
s = {(r["budget_percent"], f["experts_dtype"]): r["expert_slots"] for f in j["formats"] for r in f["runs"]}
assert s[(25.0, "q8")] > s[(25.0, "f32")], s
PY
grep -q "KB/tok" "$work/cmp.md" || { echo "FAIL: no comparison table"; fail=1; }
[ $fail -eq 0 ] && echo "narrow weights through the commands: ok"
exit $fail
